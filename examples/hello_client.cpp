// A first program with redcoro: one connection, typed replies, errors as data.
//   hello_client [port]       (a redis-server on 127.0.0.1, port 6379 by default)
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

namespace asio = boost::asio;
namespace proto = redcoro::proto;

asio::awaitable<void> session(redcoro::connection& conn) {
  // Several commands in one request: one write, replies decoded straight into these types.
  proto::request req;
  req.push("SET", "greeting", "hello", "EX", 60);
  req.push("GET", "greeting");
  req.push("INCR", "visits");
  req.push("HSET", "user:1", std::map<std::string, std::string>{{"name", "ada"}, {"lang", "c++"}});
  req.push("HGETALL", "user:1");
  req.push("LPUSH", "greeting", "oops");  // wrong type: an error for this command only
  proto::response<std::string, std::optional<std::string>, std::int64_t, std::int64_t,
                  std::map<std::string, std::string>, std::int64_t>
      resp;
  co_await conn.async_exec(req, resp, asio::use_awaitable);

  auto& [set, get, visits, hset, user, lpush] = resp;
  std::printf("SET -> %s, GET -> %s, visits -> %lld\n", set.value().c_str(),
              get.value().value_or("(nil)").c_str(), static_cast<long long>(visits.value()));
  for (const auto& [field, value] : user.value())
    std::printf("user:1 %s = %s\n", field.c_str(), value.c_str());
  if (lpush.has_error()) std::printf("LPUSH failed: %s\n", lpush.error().message.c_str());

  // Any command, without declaring types: the reply comes back as a dynamic value.
  auto v = co_await conn.async_exec(redcoro::command("HINCRBY", "user:1", "logins", 1),
                                    asio::use_awaitable);
  std::printf("HINCRBY -> %s (RESP%d)\n", v.value().to_display().c_str(), conn.protocol());
  conn.close();
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection_config cfg;
  if (argc > 1) cfg.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  redcoro::connection conn(ioc, cfg);
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  asio::co_spawn(ioc, session(conn), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc.run();
  return 0;
}
