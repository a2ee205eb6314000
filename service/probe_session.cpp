#include "service/probe_session.hpp"

#include "auth/basic.hpp"
#include "auth/challenge.hpp"
#include "auth/digest.hpp"
#include "auth/errors.hpp"
#include "auth/scheme_choice.hpp"
#include "config/loader.hpp"
#include "proxycore/counters.hpp"
#include "proxycore/destinations.hpp"
#include "proxycore/errors.hpp"
#include "proxycore/upstream_pool.hpp"
#include "service/probe.hpp"
#include "service/probe_text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>
#include <vector>

namespace authshim::service {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using response_parser = http::response_parser<http::buffer_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// A response body is read (and discarded) up to this size; past it the connection is closed.
constexpr std::uint64_t max_body_bytes = 1024 * 1024;
constexpr std::size_t body_read_size = 16 * 1024;

std::chrono::microseconds since(clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start);
}

/// Errors that mean the upstream closed the connection before answering.
bool closed_before_answer(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted;
}

/// What one round trip gave.
struct answer {
    enum class failure { none, connect, exchange, authorization } failed = failure::none;
    error_code ec;
    std::error_code auth_ec; ///< failure::authorization: why no answer could be computed
    bool reused = false;     ///< sent on a connection kept from the previous round trip
    bool resent = false;     ///< the kept connection had been closed: sent again on a new one
    std::optional<std::chrono::microseconds> connect_time; ///< a new connection was made
    std::chrono::microseconds time{};                      ///< request sent -> response head read
    http::response_header<> head;
    std::uint64_t body_bytes = 0;
    std::string body_note; ///< set when the body was not read whole
    unsigned status() const { return head.result_int(); }
};

/// An exit code and the sentence that explains it.
struct verdict {
    int code = probe_error;
    std::string text;
};

std::string outcome_label(int code) {
    switch (code) {
    case probe_ok:
        return "OK";
    case probe_unreachable:
        return "UNREACHABLE";
    case probe_rejected:
        return "REJECTED";
    case probe_no_scheme:
        return "NO COMMON SCHEME";
    case probe_timeout:
        return "TIMEOUT";
    case probe_http_error:
        return "HTTP ERROR";
    default:
        return "ERROR";
    }
}

std::vector<auth::scheme> allowed_schemes(const config::upstream& up) {
    std::vector<auth::scheme> out;
    for (const auto s : up.schemes)
        out.push_back(s == config::auth_scheme::digest ? auth::scheme::digest
                                                       : auth::scheme::basic);
    return out;
}

class probe_session {
public:
    probe_session(asio::any_io_executor ex, const config::config& cfg, const probe_request& request,
                  std::ostream& out, std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log)
        : cfg_(cfg), upstream_(cfg.upstreams.at(0)), request_(request), out_(out),
          allowed_(allowed_schemes(upstream_)), log_(std::move(log)),
          pool_(std::move(ex), upstream_, cfg.timeouts.connect, stats_) {
        if (upstream_.credentials) {
            credential_name_ = *upstream_.credentials;
            credential_ = &cfg.credentials.at(credential_name_);
        }
    }

    asio::awaitable<int> run();

private:
    asio::awaitable<answer> round_trip();
    asio::awaitable<answer> attempt();
    asio::awaitable<bool> read_body(response_parser& rp, answer& a);
    std::error_code authorization(std::string& header_value);
    void drop_connection();

    /// Prints the challenges of a 407 and parses them into `out`; false when they cannot be.
    bool take_challenges(const answer& a, std::vector<auth::challenge>& out);
    void print_round_trip(int n, const answer& a);
    verdict failure(const answer& a) const;
    verdict final_answer(const answer& a) const;
    int conclude(const verdict& v);
    std::string who() const;

    const config::config& cfg_;
    const config::upstream& upstream_;
    const probe_request& request_;
    std::ostream& out_;
    const std::vector<auth::scheme> allowed_;
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_; // what the pool logged (TLS)
    const config::credential* credential_ = nullptr;
    std::string credential_name_;

    // Declared before the pool and the connection: connections count themselves in it.
    proxycore::counters stats_;
    proxycore::upstream_pool pool_;
    proxycore::connection_ptr conn_;

    std::optional<auth::scheme> scheme_; ///< what the next request answers with; none: nothing
    config::secret_string basic_header_;
    std::optional<auth::digest_state> digest_;
    bool digest_offered_before_ = false;
};

std::string probe_session::who() const {
    return "\"" + probe_text::printable(credential_name_) + "\" (user " +
           probe_text::printable(credential_->username) + ")";
}

void probe_session::drop_connection() {
    if (!conn_) return;
    conn_->stream.close();
    conn_.reset();
}

std::error_code probe_session::authorization(std::string& header_value) {
    header_value.clear();
    if (!scheme_) return {};
    if (*scheme_ == auth::scheme::basic) {
        header_value.assign(basic_header_.expose());
        return {};
    }
    return digest_->authorize(request_.method, request_.target, credential_->username,
                              credential_->password.expose(), std::string_view(), header_value);
}

asio::awaitable<answer> probe_session::round_trip() {
    auto a = co_await attempt();
    if (a.failed == answer::failure::exchange && a.reused && closed_before_answer(a.ec)) {
        // The upstream closed the kept connection in the meantime: the request got no answer,
        // so nothing was judged. Once more on a new connection (with a fresh Digest nc).
        a = co_await attempt();
        a.resent = true;
    }
    co_return a;
}

asio::awaitable<answer> probe_session::attempt() {
    answer a;
    if (conn_) {
        a.reused = true;
    } else {
        const auto start = clock::now();
        auto [ec, connection] = co_await pool_.acquire(true);
        a.connect_time = since(start);
        if (ec) {
            a.failed = answer::failure::connect;
            a.ec = ec;
            co_return a;
        }
        conn_ = std::move(connection);
    }

    // The request head. Built piece by piece and wiped after the write: it may hold the
    // Proxy-Authorization value, which must not linger in freed memory.
    std::string credentials;
    if (const auto ec = authorization(credentials)) {
        a.failed = answer::failure::authorization;
        a.auth_ec = ec;
        co_return a;
    }
    std::string head;
    head.reserve(256 + credentials.size());
    head.append(request_.method).append(" ").append(request_.target).append(" HTTP/1.1\r\n");
    head.append("Host: ").append(request_.host).append("\r\n");
    head.append("User-Agent: authshim/" AUTHSHIM_VERSION " (probe)\r\n");
    if (request_.method != "CONNECT") head.append("Accept: */*\r\n");
    if (!credentials.empty())
        head.append("Proxy-Authorization: ").append(credentials).append("\r\n");
    head.append("\r\n");
    config::wipe(credentials);

    const auto timeout = cfg_.timeouts.upstream_response;
    const auto start = clock::now();
    conn_->stream.expires_after(timeout);
    auto [wec, written] = co_await asio::async_write(conn_->stream, asio::buffer(head), use_tuple);
    config::wipe(head);
    error_code ec = wec;

    // The response head; interim 1xx answers are skipped.
    std::optional<response_parser> rp;
    while (!ec) {
        rp.emplace();
        rp->header_limit(static_cast<std::uint32_t>(cfg_.limits.max_header_bytes));
        rp->body_limit(boost::none);
        conn_->stream.expires_after(timeout);
        auto [rec, n] =
            co_await http::async_read_header(conn_->stream, conn_->buffer, *rp, use_tuple);
        ec = rec;
        if (ec || rp->get().result_int() >= 200) break;
        if (rp->get().result() == http::status::switching_protocols)
            ec = proxycore::proxy_errc::bad_upstream_response;
    }
    a.time = since(start);
    if (ec) {
        a.failed = answer::failure::exchange;
        a.ec = ec;
        drop_connection();
        co_return a;
    }
    a.head = rp->get().base();
    // A 2xx to CONNECT is a tunnel: no body follows, and the probe ends it here.
    const bool tunnel = request_.method == "CONNECT" && a.status() / 100 == 2;
    bool keep = !tunnel && rp->keep_alive();
    if (!tunnel) {
        const bool whole = co_await read_body(*rp, a);
        keep = keep && whole;
    }
    if (keep) {
        conn_->stream.expires_never();
        ++conn_->exchanges;
    } else {
        drop_connection();
    }
    co_return a;
}

asio::awaitable<bool> probe_session::read_body(response_parser& rp, answer& a) {
    if (rp.is_done()) co_return true;
    std::vector<char> buffer(body_read_size);
    auto& body = rp.get().body();
    while (!rp.is_done()) {
        if (a.body_bytes >= max_body_bytes) {
            a.body_note = "body larger than 1 MiB: not read further";
            co_return false;
        }
        body.data = buffer.data();
        body.size = buffer.size();
        conn_->stream.expires_after(cfg_.timeouts.upstream_response);
        auto [ec, n] = co_await http::async_read(conn_->stream, conn_->buffer, rp, use_tuple);
        a.body_bytes += buffer.size() - body.size;
        if (ec == http::error::need_buffer) continue;
        if (ec == beast::error::timeout) {
            a.body_note = "body not read whole: nothing within timeouts.upstream_response";
            co_return false;
        }
        if (ec) {
            a.body_note = "body not read whole: " + ec.message();
            co_return false;
        }
    }
    co_return true;
}

void probe_session::print_round_trip(int n, const answer& a) {
    std::string with = "without credentials";
    if (scheme_) with = "with " + probe_text::scheme_label(*scheme_) + " credentials";
    out_ << "round trip " << n << ": " << request_.method << " " << with << " -> ";
    switch (a.failed) {
    case answer::failure::none:
        out_ << probe_text::status_text(a.status(), a.head.reason()) << " in "
             << probe_text::milliseconds(a.time);
        break;
    case answer::failure::connect:
        out_ << "no connection";
        break;
    case answer::failure::exchange:
        out_ << "no answer after " << probe_text::milliseconds(a.time);
        break;
    case answer::failure::authorization:
        out_ << "not sent";
        break;
    }
    if (a.connect_time)
        out_ << " (new connection, connect " << probe_text::milliseconds(*a.connect_time) << ")";
    else if (a.reused)
        out_ << " (reused connection)";
    out_ << "\n";
    if (a.resent)
        out_ << "  the kept connection had been closed by the upstream: sent again on a new one\n";
    if (!a.body_note.empty()) out_ << "  " << a.body_note << "\n";
}

bool probe_session::take_challenges(const answer& a, std::vector<auth::challenge>& out) {
    std::vector<std::string_view> values;
    for (const auto& f : a.head)
        if (f.name() == http::field::proxy_authenticate) values.push_back(f.value());
    if (values.empty()) {
        out_ << "  offered: nothing (no Proxy-Authenticate field)\n";
        out.clear();
        return true;
    }
    std::string detail;
    if (auth::parse_challenges(values, out, detail)) {
        out_ << "  offered: Proxy-Authenticate could not be parsed ("
             << probe_text::printable(detail, 200) << ")\n";
        return false;
    }
    for (const auto& c : out)
        out_ << "  offered: " << probe_text::describe_challenge(c, allowed_) << "\n";
    return true;
}

verdict probe_session::failure(const answer& a) const {
    const auto address = upstream_.address.to_string();
    if (a.failed == answer::failure::authorization)
        return {probe_error, "cannot compute the answer to the upstream's Digest challenge: " +
                                 a.auth_ec.message()};
    if (a.failed == answer::failure::connect) {
        if (a.ec == proxycore::proxy_errc::connect_timeout)
            return {probe_timeout, "no connection to " + address + " within timeouts.connect (" +
                                       config::format_duration(cfg_.timeouts.connect) + ")"};
        if (a.ec == proxycore::proxy_errc::resolve_failed)
            return {probe_unreachable, "the upstream's name " +
                                           probe_text::printable(upstream_.address.host) +
                                           " does not resolve"};
        if (a.ec == proxycore::proxy_errc::tls_handshake_failed) {
            std::string text = "TLS handshake with " + address + " failed";
            const auto logged = log_->last_formatted(1);
            if (!logged.empty()) {
                auto reason = logged.back();
                while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r'))
                    reason.pop_back();
                text += " (" + probe_text::printable(reason, 400) + ")";
            }
            return {probe_unreachable, text};
        }
        return {probe_unreachable, "cannot connect to " + address + ": " + a.ec.message()};
    }
    if (a.ec == beast::error::timeout)
        return {probe_timeout, "the upstream " + address +
                                   " sent no response headers within "
                                   "timeouts.upstream_response (" +
                                   config::format_duration(cfg_.timeouts.upstream_response) + ")"};
    if (closed_before_answer(a.ec))
        return {probe_unreachable,
                "the upstream " + address + " closed the connection without answering"};
    if (a.ec == http::error::header_limit)
        return {probe_unreachable, "the upstream's response head is larger than "
                                   "limits.max_header_bytes"};
    if (a.ec == proxycore::proxy_errc::bad_upstream_response)
        return {probe_unreachable, "the upstream answered 101 Switching Protocols"};
    if (a.ec.category() == http::make_error_code(http::error::bad_version).category())
        return {probe_unreachable, "the upstream's answer is not valid HTTP: " + a.ec.message()};
    return {probe_unreachable, "the exchange with " + address + " failed: " + a.ec.message()};
}

verdict probe_session::final_answer(const answer& a) const {
    const auto status = a.status();
    const auto text = probe_text::status_text(status, a.head.reason());
    std::string auth_part;
    if (scheme_)
        auth_part = "the upstream accepted the credentials " + who() + " with " +
                    probe_text::scheme_label(*scheme_);
    else
        auth_part = "the upstream asked for no credentials";
    if (status >= 400) {
        std::string msg = scheme_ ? "the credentials " + who() + " were accepted (" +
                                        probe_text::scheme_label(*scheme_) + ")"
                                  : "the upstream asked for no credentials";
        return {probe_http_error, msg + ", but the final answer is " + text};
    }
    if (request_.method == "CONNECT" && status / 100 == 2)
        return {probe_ok, auth_part + "; tunnel to " + request_.target + " established (" + text +
                              "), then closed by the probe"};
    return {probe_ok, auth_part + "; final status " + text};
}

int probe_session::conclude(const verdict& v) {
    out_ << "outcome: " << outcome_label(v.code) << " - " << v.text << " (exit " << v.code << ")\n";
    return v.code;
}

asio::awaitable<int> probe_session::run() {
    // Round trip 1 without credentials: the report then shows what the upstream asks for.
    auto first = co_await round_trip();
    print_round_trip(1, first);
    if (first.failed != answer::failure::none) co_return conclude(failure(first));
    if (first.status() != 407) {
        if (const auto squid_error = first.head.find("X-Squid-Error");
            squid_error != first.head.end())
            out_ << "  X-Squid-Error: " << probe_text::printable(squid_error->value()) << "\n";
        co_return conclude(final_answer(first));
    }

    std::vector<auth::challenge> challenges;
    if (!take_challenges(first, challenges))
        co_return conclude(
            {probe_no_scheme, "the upstream's challenge could not be parsed: nothing to answer"});
    if (!credential_)
        co_return conclude(
            {probe_rejected, "the upstream demands proxy authentication (407) and upstream \"" +
                                 probe_text::printable(upstream_.name) +
                                 "\" has no credentials configured (upstreams[].credentials)"});
    auto choice = auth::choose_scheme(challenges, allowed_, digest_offered_before_);
    digest_offered_before_ = digest_offered_before_ || choice.usable_digest_offered;
    if (choice.error) {
        out_ << "  chosen: none\n";
        co_return conclude({probe_no_scheme, "no scheme the upstream offers can be answered: " +
                                                 probe_text::printable(choice.message, 400)});
    }
    scheme_ = choice.chosen;
    out_ << "  chosen: " << probe_text::scheme_label(choice.chosen);
    if (choice.digest) out_ << " (" << auth::digest_algorithm_name(choice.digest->algorithm) << ")";
    out_ << ", the first of schemes [" << probe_text::scheme_list(allowed_)
         << "] the upstream offers\n";
    if (choice.chosen == auth::scheme::digest) {
        digest_.emplace(*choice.digest);
    } else {
        basic_header_ = config::secret_string(
            auth::basic_authorization(credential_->username, credential_->password.expose()));
    }

    bool stale_retried = false;
    for (int n = 2;; ++n) {
        auto a = co_await round_trip();
        print_round_trip(n, a);
        if (a.failed != answer::failure::none) {
            auto v = failure(a);
            v.text += "; the credentials were neither accepted nor rejected";
            co_return conclude(v);
        }
        if (a.status() != 407) {
            if (const auto squid_error = a.head.find("X-Squid-Error"); squid_error != a.head.end())
                out_ << "  X-Squid-Error: " << probe_text::printable(squid_error->value()) << "\n";
            co_return conclude(final_answer(a));
        }
        if (!take_challenges(a, challenges))
            co_return conclude({probe_no_scheme, "the upstream answered the credentials with a "
                                                 "challenge that could not be parsed"});
        choice = auth::choose_scheme(challenges, allowed_, digest_offered_before_);
        digest_offered_before_ = digest_offered_before_ || choice.usable_digest_offered;
        const bool stale = !choice.error && choice.chosen == auth::scheme::digest &&
                           choice.digest->stale && scheme_ == auth::scheme::digest;
        if (stale && !stale_retried) {
            // An expired nonce is no verdict on the password: one more try with the new one.
            out_ << "  stale nonce: not a rejection; answering the new nonce once\n";
            digest_->reset(*choice.digest);
            stale_retried = true;
            continue;
        }
        std::string why;
        if (choice.error == auth::make_error_code(auth::auth_errc::downgrade_refused))
            why = "the upstream refused the Digest answer and now offers only Basic, which "
                  "authshim does not send after Digest was offered (downgrade protection; set "
                  "schemes to [\"basic\"] if Basic is intended)";
        else if (stale)
            why = "the upstream called the new nonce stale too";
        else
            why = "the upstream rejected the credentials " + who() + " (answered with " +
                  probe_text::scheme_label(*scheme_) + ")";
        co_return conclude(
            {probe_rejected, why +
                                 ". They were sent once and are not sent again: check the "
                                 "user name and password (authshim run would pause them "
                                 "after lockout.max_rejections = " +
                                 std::to_string(cfg_.lockout.max_rejections) + ")"});
    }
}

/// Makes spdlog's default logger the capturing one for as long as it lives: the upstream pool
/// logs why a TLS handshake failed, and that reason belongs in the report, not on stderr.
class log_capture {
public:
    explicit log_capture(std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink)
        : previous_(spdlog::default_logger()) {
        sink->set_pattern("%v");
        auto logger = std::make_shared<spdlog::logger>("probe", std::move(sink));
        logger->set_level(spdlog::level::warn);
        spdlog::set_default_logger(std::move(logger));
    }
    ~log_capture() { spdlog::set_default_logger(previous_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

private:
    std::shared_ptr<spdlog::logger> previous_;
};

void print_intro(const config::config& cfg, const probe_request& request, std::ostream& out) {
    const auto& up = cfg.upstreams.at(0);
    out << "probe: " << request.method << " " << request.target << "\n";
    out << "upstream: \"" << probe_text::printable(up.name) << "\" at ";
    if (up.transport == config::upstream_transport::https) {
        out << "https://" << up.address.to_string() << " (TLS to the proxy, CA "
            << (up.ca_file ? up.ca_file->string() : std::string("from the system store")) << ")";
    } else {
        out << up.address.to_string();
    }
    out << "; timeouts: connect " << config::format_duration(cfg.timeouts.connect)
        << ", upstream_response " << config::format_duration(cfg.timeouts.upstream_response)
        << "\n";
    if (up.credentials) {
        const auto& c = cfg.credentials.at(*up.credentials);
        out << "credentials: \"" << probe_text::printable(*up.credentials) << "\", user "
            << probe_text::printable(c.username)
            << "; schemes: " << probe_text::scheme_list(allowed_schemes(up)) << "\n";
    } else {
        out << "credentials: none configured for this upstream\n";
    }
    if (!proxycore::destination_allowed(cfg.access.destinations, request.target_host))
        out << "note: " << probe_text::printable(request.target_host)
            << " is not in access.destinations: clients of authshim get 403 for it (the probe "
               "asks the upstream anyway)\n";
}

} // namespace

int run_probe(const config::config& cfg, const probe_request& request, std::ostream& out) {
    print_intro(cfg, request, out);
    auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(8);
    const log_capture capture(sink);
    asio::io_context io;
    std::unique_ptr<probe_session> session;
    try {
        session = std::make_unique<probe_session>(io.get_executor(), cfg, request, out, sink);
    } catch (const std::exception& e) { // the TLS context (CA file) could not be set up
        out << "outcome: " << outcome_label(probe_unreachable) << " - " << e.what() << " (exit "
            << probe_unreachable << ")\n";
        return probe_unreachable;
    }
    int code = probe_error;
    asio::co_spawn(io, session->run(), [&](std::exception_ptr e, int result) {
        code = result;
        if (!e) return;
        code = probe_error;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            out << "outcome: ERROR - unexpected failure: " << ex.what() << " (exit " << code
                << ")\n";
        } catch (...) {
            out << "outcome: ERROR - unexpected failure (exit " << code << ")\n";
        }
    });
    io.run();
    out.flush();
    return code;
}

} // namespace authshim::service
