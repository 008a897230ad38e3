# Sanitizers apply to every target of the build (libraries included), so the
# instrumented code and its callers agree.
if(REDCORO_SANITIZE)
  add_compile_options(-fsanitize=${REDCORO_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND REDCORO_SANITIZE MATCHES "undefined")
    # clang 14 cannot emit UBSan's function-type check for coroutines ("Cannot represent a
    # difference across sections"); the other UBSan checks stay on.
    add_compile_options(-fno-sanitize=function)
  endif()
  add_link_options(-fsanitize=${REDCORO_SANITIZE})
endif()
