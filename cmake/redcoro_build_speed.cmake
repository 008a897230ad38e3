# Build-speed helpers: ccache when present, a fast linker when present.
# Both are optional; the build works without them.

find_program(REDCORO_CCACHE ccache)
if(REDCORO_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # Precompiled headers and ccache only agree when ccache ignores the pch's defines and
  # the headers' timestamps; base_dir lets two build trees (say, a fresh clone) share hits.
  # Settings go through the launcher because the environment of CMake's configure step does
  # not reach the build.
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=1 ${REDCORO_CCACHE})
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
