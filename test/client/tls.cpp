#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a
// second CA that signed none of them; made with the openssl CLI for this test run.
struct test_pki {
  std::string dir;

  test_pki() {
    char tmpl[] = "/tmp/redcoro-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    const std::string script =
        "cd " + dir +
        " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext"
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2"
        "    -subj /CN=redcoro-test-ca"
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt"
        "    -days 2 -subj /CN=some-other-ca"
        " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr"
        "    -subj /CN=localhost"
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
        "    -out server.crt -days 2 -extfile san.ext"
        " && openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr"
        "    -subj /CN=redcoro-client"
        " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
        "    -out client.crt -days 2";
    REQUIRE(std::system(("(" + script + ") >/dev/null 2>&1").c_str()) == 0);
  }
  ~test_pki() { std::filesystem::remove_all(dir); }

  std::string file(const char* name) const { return dir + "/" + name; }

  // A server speaking TLS on its own port (plain TCP stays on server.port()).
  std::vector<std::string> server_args(std::uint16_t tls_port, bool require_client) const {
    return {"--tls-port",         std::to_string(tls_port),
            "--tls-cert-file",    file("server.crt"),
            "--tls-key-file",     file("server.key"),
            "--tls-ca-cert-file", file("ca.crt"),
            "--tls-auth-clients", require_client ? "yes" : "no"};
  }

  redcoro::connection_config client(std::uint16_t tls_port) const {
    redcoro::connection_config cfg = local_config(tls_port);
    cfg.tls.enabled = true;
    cfg.tls.ca_file = file("ca.crt");
    return cfg;
  }
};

// Runs one GET through `cfg`; returns how async_run ended when it gave up (or success).
struct attempt_result {
  bool worked = false;
  redcoro::error_code run_error;
};

attempt_result try_connect(redcoro::connection_config cfg) {
  cfg.reconnect.max_attempts = 1;
  asio::io_context ioc;
  connection conn(ioc, cfg);
  attempt_result out;
  // The run's handler writes into `out`, which outlives the io_context's run (the test
  // coroutine's frame does not).
  conn.async_run([&out](redcoro::error_code ec) { out.run_error = ec; });
  run_bounded(ioc, [&]() -> awaitable<void> {
    redcoro::error_code ec;
    auto r = co_await conn.async_exec(cmd::set("over-tls", "yes"),
                                      asio::redirect_error(use_awaitable, ec));
    out.worked = !ec && r.has_value();
    conn.close();
  });
  return out;
}

}  // namespace

TEST_CASE("TLS: verified handshake, then ordinary traffic", "[client][live][tls]") {
  test_pki pki;
  const std::uint16_t tls_port = redcoro::test::free_port();
  redis_server server(pki.server_args(tls_port, false));
  asio::io_context ioc;
  connection conn(ioc, pki.client(tls_port));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    auto set = co_await conn.async_exec(cmd::set("k", "over tls"), use_awaitable);
    CHECK(set.value().has_value());
    auto [get, n] =
        co_await conn.async_exec(redcoro::pipeline(cmd::get("k"), cmd::incr("n")), use_awaitable);
    CHECK(get.value() == "over tls");
    CHECK(n.value() == 1);
    // Large values cross several TLS records each way.
    const std::string big(256 * 1024, 'x');
    co_await conn.async_exec(cmd::set("big", big), use_awaitable);
    auto back = co_await conn.async_exec(cmd::get("big"), use_awaitable);
    CHECK(back.value() == big);
    conn.close();
  });
}

TEST_CASE("TLS: a certificate from another CA or for another name is refused",
          "[client][live][tls]") {
  test_pki pki;
  const std::uint16_t tls_port = redcoro::test::free_port();
  redis_server server(pki.server_args(tls_port, false));

  redcoro::connection_config wrong_ca = pki.client(tls_port);
  wrong_ca.tls.ca_file = pki.file("other-ca.crt");
  wrong_ca.request_timeout = std::chrono::seconds(5);
  const auto refused = try_connect(wrong_ca);
  CHECK_FALSE(refused.worked);
  CHECK(refused.run_error.message().find("certificate verify failed") != std::string::npos);

  redcoro::connection_config wrong_name = pki.client(tls_port);
  wrong_name.tls.server_name = "redis.example.com";
  wrong_name.request_timeout = std::chrono::seconds(5);
  const auto mismatch = try_connect(wrong_name);
  CHECK_FALSE(mismatch.worked);
  CHECK(mismatch.run_error.message().find("certificate verify failed") != std::string::npos);

  // The name the certificate does carry works.
  redcoro::connection_config right_name = pki.client(tls_port);
  right_name.tls.server_name = "localhost";
  CHECK(try_connect(right_name).worked);
}

TEST_CASE("TLS: mutual TLS required, refused without a certificate, accepted with one",
          "[client][live][tls]") {
  test_pki pki;
  const std::uint16_t tls_port = redcoro::test::free_port();
  redis_server server(pki.server_args(tls_port, true));

  redcoro::connection_config anonymous = pki.client(tls_port);
  anonymous.request_timeout = std::chrono::seconds(5);
  const auto refused = try_connect(anonymous);
  CHECK_FALSE(refused.worked);
  CHECK(refused.run_error);

  redcoro::connection_config with_cert = pki.client(tls_port);
  with_cert.tls.cert_file = pki.file("client.crt");
  with_cert.tls.key_file = pki.file("client.key");
  CHECK(try_connect(with_cert).worked);
}

TEST_CASE("TLS: an unreadable CA file is an error naming it", "[client][tls]") {
  redcoro::connection_config cfg;
  cfg.tls.enabled = true;
  cfg.tls.ca_file = "/nonexistent/ca.pem";
  asio::io_context ioc;
  try {
    connection conn(ioc, cfg);
    FAIL("the connection was made");
  } catch (const boost::system::system_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/ca.pem") != std::string::npos);
  }
}

TEST_CASE("TLS: max_lifetime replaces the connection, with a TLS handshake each time",
          "[client][live][tls][lifetime]") {
  test_pki pki;
  const std::uint16_t tls_port = redcoro::test::free_port();
  redis_server server(pki.server_args(tls_port, false));
  asio::io_context ioc;
  auto cfg = pki.client(tls_port);
  cfg.max_lifetime = std::chrono::milliseconds(200);
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    std::int64_t ok = 0, failed = 0, running = 0;
    std::set<std::int64_t> ids;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    auto worker = [&](int w) -> awaitable<void> {
      while (std::chrono::steady_clock::now() < until) {
        redcoro::error_code ec;
        auto r = co_await conn.async_exec(cmd::incr("n"), asio::redirect_error(use_awaitable, ec));
        (ec || r.has_error()) ? ++failed : ++ok;
        if (w == 0) {
          auto id = co_await conn.async_exec(redcoro::command<std::int64_t>("CLIENT", "ID"),
                                             asio::redirect_error(use_awaitable, ec));
          if (!ec && !id.has_error()) ids.insert(id.value());
        }
      }
      --running;
    };
    for (int w = 0; w < 10; ++w) {
      ++running;
      asio::co_spawn(ioc, worker(w), asio::detached);
    }
    while (running > 0) {
      asio::steady_timer t(ioc, std::chrono::milliseconds(20));
      co_await t.async_wait(use_awaitable);
    }
    CHECK(failed == 0);
    const auto n = co_await conn.async_exec(cmd::get("n"), use_awaitable);
    CHECK(n.value() == std::to_string(ok));
    CHECK(ids.size() >= 3);
    conn.close();
  });
}
