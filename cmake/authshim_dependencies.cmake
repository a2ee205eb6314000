# Third-party dependencies. On Debian 12 they come from packages (scripts/setup.sh installs them);
# MSVC users get them from the vcpkg manifest (vcpkg.json).
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)

# Asio and Beast are compiled once, in proxycore/asio_impl.cpp.
add_library(authshim_boost INTERFACE)
target_link_libraries(authshim_boost INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(authshim_boost INTERFACE
    BOOST_ASIO_SEPARATE_COMPILATION
    BOOST_BEAST_SEPARATE_COMPILATION
    BOOST_ASIO_NO_DEPRECATED)
if(WIN32)
    target_compile_definitions(authshim_boost INTERFACE _WIN32_WINNT=0x0A00 WIN32_LEAN_AND_MEAN
                               NOMINMAX BOOST_ALL_NO_LIB)
    target_link_libraries(authshim_boost INTERFACE ws2_32 mswsock)
endif()
