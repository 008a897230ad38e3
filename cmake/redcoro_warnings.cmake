# redcoro_target_warnings(<target>): the project's warning set on one target.
function(redcoro_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wcast-align -Wnull-dereference
                                           -Wimplicit-fallthrough)
  if(REDCORO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
