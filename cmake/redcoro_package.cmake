# Installation: headers, libraries and a CMake package so that
# find_package(redcoro) works for users.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(REDCORO_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/redcoro)

install(EXPORT redcoroTargets NAMESPACE redcoro:: DESTINATION ${REDCORO_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/redcoroConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/redcoroConfig.cmake
                              INSTALL_DESTINATION ${REDCORO_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/redcoroConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/redcoroConfig.cmake
              ${PROJECT_BINARY_DIR}/redcoroConfigVersion.cmake
        DESTINATION ${REDCORO_INSTALL_CMAKEDIR})
