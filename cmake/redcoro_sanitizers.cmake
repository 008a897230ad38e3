# Sanitizers apply to every target of the build (libraries included), so the
# instrumented code and its callers agree.
if(REDCORO_SANITIZE)
  add_compile_options(-fsanitize=${REDCORO_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${REDCORO_SANITIZE})
endif()
