#include "service/platform.hpp"

#include "config/config.hpp"

#include <windows.h>

#include <aclapi.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace config = authshim::config;
using authshim::service::config_access_problems;

namespace {

/// A new folder under the temp folder holding a config and a token file, both with a NULL DACL
/// (anyone may read them: Windows keeps it; Wine reads back a DACL made from the mode, 0777 then),
/// removed at the end of the test.
struct exposed_files {
    fs::path folder;
    fs::path config_file;
    fs::path token_file;

    exposed_files() {
        folder = fs::temp_directory_path() /
                 ("authshim-access-test-" + std::to_string(GetCurrentProcessId()) + "-" +
                  std::to_string(GetTickCount64()));
        fs::create_directories(folder);
        config_file = folder / "authshim.json";
        token_file = folder / "admin-token.txt";
        std::ofstream(config_file) << "{}\n";
        std::ofstream(token_file) << "not-a-real-token\n";
        for (const auto& file : {config_file, token_file}) {
            std::wstring name = file.native();
            REQUIRE(SetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT,
                                          DACL_SECURITY_INFORMATION |
                                              PROTECTED_DACL_SECURITY_INFORMATION,
                                          nullptr, nullptr, nullptr, nullptr) == ERROR_SUCCESS);
        }
    }
    ~exposed_files() {
        std::error_code ec;
        fs::remove_all(folder, ec);
    }
};

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

} // namespace

TEST_CASE("windows: config_access_problems checks a config without secrets not at all") {
    exposed_files files;
    config::config cfg;
    cfg.source = files.config_file;
    CHECK(config_access_problems(cfg).empty());
}

TEST_CASE("windows: config_access_problems checks the config and the token file of "
          "admin.token") {
    exposed_files files;
    config::config cfg;
    cfg.source = files.config_file;

    SECTION("a {\"file\"} token: both files") {
        cfg.admin.token_source = config::file_secret{files.token_file};
        const auto problems = config_access_problems(cfg);
        INFO([&] {
            std::string all;
            for (const auto& p : problems)
                all += p + "\n";
            return all;
        }());
        REQUIRE(problems.size() == 2);
        CHECK(mentions(problems, "the config file " + files.config_file.string()));
        CHECK(mentions(problems, "the token file of admin.token " + files.token_file.string()));
    }
    SECTION("an {\"env\"} token: the config file alone") {
        cfg.admin.token_source = config::env_secret{"AUTHSHIM_ADMIN_TOKEN"};
        const auto problems = config_access_problems(cfg);
        REQUIRE(problems.size() == 1);
        CHECK(mentions(problems, "the config file " + files.config_file.string()));
    }
}
