# Build-speed helpers: ccache when present, a fast linker when present.
# Both are optional; the build works without them.

find_program(REDCORO_CCACHE ccache)
if(REDCORO_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${REDCORO_CCACHE})
  # Precompiled headers and ccache only agree when ccache ignores the
  # timestamps of the pch and the headers' mtimes.
  set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
endif()

if(NOT DEFINED REDCORO_LINKER)
  find_program(REDCORO_MOLD mold)
  find_program(REDCORO_LLD ld.lld)
  if(REDCORO_MOLD)
    set(REDCORO_LINKER mold)
  elseif(REDCORO_LLD)
    set(REDCORO_LINKER lld)
  else()
    set(REDCORO_LINKER "")
  endif()
endif()
if(REDCORO_LINKER)
  add_link_options(-fuse-ld=${REDCORO_LINKER})
endif()
