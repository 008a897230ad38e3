// Compiled with the shared precompiled header, so that CMake builds it for this target and
// the test executables can reuse it.
