// Builds a request, parses a reply and makes each module's objects with an installed redcoro, then
// runs a connection in a coroutine; exits non-zero on a mismatch. scripts/run-tests.sh builds it
// with g++ and with clang++ against the g++-built install.
#include <redcoro/cache/codec.hpp>
#include <redcoro/client/client.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/http/exporter.hpp>
#include <redcoro/http/format.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/pubsub/subscriber.hpp>
#include <redcoro/recipes/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

int main() {
  redcoro::proto::request req;
  req.push("GET", "key");
  if (req.payload() != "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n") return 1;

  redcoro::proto::parser parser;
  std::string_view reply = "$5\r\nhello\r\n";
  std::size_t pos = 0;
  std::error_code ec;
  std::string_view text;
  const auto keep = [&](const redcoro::proto::node& n) { text = n.value; };
  if (!parser.consume_message(reply, pos, keep, ec) || text != "hello") return 1;
  // The client links too: a connection that is closed before it ever runs.
  boost::asio::io_context ioc;
  redcoro::connection conn(ioc, redcoro::connection_config{});
  conn.close();
  // And every module: typed commands, scripts (OpenSSL), the pool client, the subscriber,
  // the cluster client, the cluster subscriber.
  if (redcoro::cmd::get("k").request().commands() != 1) return 1;
  if (redcoro::script("return 1").sha1().size() != 40) return 1;
  redcoro::client cl(ioc, redcoro::connection_config{});
  cl.close();
  redcoro::subscriber sub(ioc, redcoro::connection_config{});
  sub.close();
  if (redcoro::proto::key_slot("foo") != 12182) return 1;
  redcoro::cluster_client cluster(ioc, redcoro::cluster_config{});
  cluster.close();
  redcoro::cluster_subscriber cluster_sub(ioc, redcoro::cluster_config{});
  cluster_sub.close();
  // The cache codec (simdjson behind it): a vector to JSON and back.
  std::string json;
  redcoro::cache::codec_error where;
  std::vector<int> numbers;
  if (redcoro::cache::encode(std::vector<int>{1, 2}, json, where) || json != "[1,2]") return 1;
  if (redcoro::cache::decode(json, numbers, where) || numbers != std::vector<int>{1, 2}) return 1;
  // The recipes library links: its error category.
  if (redcoro::recipes::make_error_code(redcoro::recipes::error::lock_not_held).message().empty())
    return 1;
  // The exporter links (Beast inside it): it listens on a port of its own, then closes.
  redcoro::http::exporter web(ioc.get_executor());
  if (web.local_endpoint().port() == 0) return 1;
  web.close();
  if (!redcoro::http::to_health_json({}).starts_with("{\"healthy\":true")) return 1;

  // A connection run to its end, against a peer that closes at once, with a coroutine on the
  // program's side. The error the library reports must be the program's asio::error::eof: a
  // library with Asio compiled apart (BOOST_ASIO_SEPARATE_COMPILATION) holds error categories of
  // its own, and then the two compare unequal.
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto peer = co_await acceptor.async_accept(asio::use_awaitable);
        peer.close();
      },
      asio::detached);
  redcoro::connection_config cfg;
  cfg.port = acceptor.local_endpoint().port();
  cfg.reconnect.max_attempts = 1;
  redcoro::connection closed(io, cfg);
  boost::system::error_code ended;
  std::puts("(a connection to a peer that closes: the error logged next is expected)");
  closed.async_run([&](boost::system::error_code e) { ended = e; });
  io.run();
  if (ended != asio::error::eof) {
    std::printf("async_run ended with %s (%s), not asio::error::eof\n", ended.message().c_str(),
                ended.category().name());
    return 1;
  }
  std::puts("redcoro found and working");
  return 0;
}
