// An event stream with a consumer group: services XADD events to a stream; a group of
// consumers shares the work with XREADGROUP (each entry goes to one consumer of the group)
// and XACKs what it has handled. An entry read but never acknowledged stays pending, to be
// read again (with ID "0" instead of ">") after a crash.
//   event_stream [port]       (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;
using fields = std::vector<std::pair<std::string, std::string>>;

const std::string stream = "example:event_stream:orders";

asio::awaitable<void> session(redcoro::connection& conn) {
  co_await conn.async_exec(cmd::del(stream), asio::use_awaitable);  // a clean start (and group)

  // The group reads from the start ("0"); MKSTREAM creates the stream if it is missing.
  auto created =
      co_await conn.async_exec(cmd::xgroup_create(stream, "billing", "0"), asio::use_awaitable);
  expect(created.value() == "OK", "XGROUP CREATE");

  const std::vector<fields> orders{{{"order", "1001"}, {"total", "25.00"}},
                                   {{"order", "1002"}, {"total", "9.90"}},
                                   {{"order", "1003"}, {"total", "120.00"}}};
  for (const fields& order : orders) {
    auto id = co_await conn.async_exec(cmd::xadd(stream, order), asio::use_awaitable);
    std::printf("XADD %s -> %s\n", order[0].second.c_str(), id.value().c_str());
  }

  // Consumer "billing-1" of the group asks for entries no one in the group has seen yet.
  cmd::xread_options up_to_ten;
  up_to_ten.count = 10;
  const fields new_entries{{stream, ">"}};
  auto read = co_await conn.async_exec(
      cmd::xreadgroup("billing", "billing-1", new_entries, up_to_ten), asio::use_awaitable);
  expect(read.value().has_value() && read.value()->size() == 1, "XREADGROUP read the stream");
  const std::vector<redcoro::stream_entry>& entries = read.value()->at(0).second;
  expect(entries.size() == 3, "three entries delivered");

  std::vector<std::string> handled;
  for (const redcoro::stream_entry& e : entries) {
    std::printf("billing-1: charge order %s, %s EUR\n", e.fields[0].second.c_str(),
                e.fields[1].second.c_str());
    handled.push_back(e.id);
  }
  auto acked = co_await conn.async_exec(cmd::xack(stream, "billing", handled), asio::use_awaitable);
  std::printf("XACK -> %lld acknowledged\n", static_cast<long long>(acked.value()));
  expect(acked.value() == 3, "XACK acknowledged all three");

  // ID "0" reads this consumer's pending (unacknowledged) entries: none are left.
  const fields pending{{stream, "0"}};
  auto again = co_await conn.async_exec(cmd::xreadgroup("billing", "billing-1", pending),
                                        asio::use_awaitable);
  expect(again.value().has_value() && again.value()->at(0).second.empty(), "nothing pending");
  std::printf("billing-1 has nothing pending\n");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("event_stream", ioc, session(conn), [&] { conn.close(); });
}
