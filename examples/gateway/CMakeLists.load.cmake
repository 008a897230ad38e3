# The gateway's load generator and its WebSocket test client; include()d from
# examples/gateway/CMakeLists.txt.
#
# redcoro_gateway_load: ws_client.hpp (a coroutine WebSocket client, for tests too) and
# load.hpp (the load itself, a library so a test can run it in-process).
# redcoro-gateway-load: the command line over it.
find_package(Boost 1.81 REQUIRED CONFIG)  # Beast, header-only
# Debian's libsimdjson-dev ships a CMake package (simdjson::simdjson, a shared library).
find_package(simdjson REQUIRED CONFIG)

add_library(redcoro_gateway_load STATIC
  ${CMAKE_CURRENT_LIST_DIR}/ws_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/load.cpp)
target_include_directories(redcoro_gateway_load PUBLIC ${CMAKE_CURRENT_LIST_DIR})
# Beast stays in the two .cpp files: ws_client.hpp names only Asio's awaitable and two small
# Beast types. simdjson is private: load.cpp parses the frames with it.
target_link_libraries(redcoro_gateway_load
  PUBLIC redcoro::client Boost::headers
  PRIVATE simdjson::simdjson)
redcoro_target_warnings(redcoro_gateway_load)

add_executable(redcoro-gateway-load ${CMAKE_CURRENT_LIST_DIR}/load_main.cpp)
target_link_libraries(redcoro-gateway-load PRIVATE redcoro_gateway_load)
redcoro_target_warnings(redcoro-gateway-load)
