# redcoro_target_warnings(<target>): the project's warning set on one target.
function(redcoro_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wcast-align
                                           -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete when a
    # coroutine frame is inlined into its caller (a false positive, GCC bug 109224).
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(REDCORO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
