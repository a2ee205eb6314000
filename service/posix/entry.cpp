// The POSIX process entry point: the arguments are already UTF-8 (or bytes passed through).
#include "service/cli.hpp"

#include <string>
#include <vector>

int main(int argc, char** argv) {
    return authshim::service::cli_main(std::vector<std::string>(argv + 1, argv + argc));
}
