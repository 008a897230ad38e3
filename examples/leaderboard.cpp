// A game leaderboard on a sorted set: ZADD records scores, ZINCRBY adds points on the
// server (atomic, whoever else scores at the same time), ZRANGE ... REV WITHSCORES lists the
// top players with their scores, and ZREVRANK gives one player's place.
//   leaderboard [port]        (a redis-server on 127.0.0.1, port 6379 by default)
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

const std::string board = "example:leaderboard:season-1";

asio::awaitable<void> session(redcoro::connection& conn) {
  co_await conn.async_exec(cmd::del(board), asio::use_awaitable);  // a clean start

  // Several (score, member) pairs in one ZADD.
  const std::vector<std::pair<double, std::string>> scores{
      {120, "ada"}, {95, "grace"}, {80, "linus"}, {60, "ken"}};
  auto added = co_await conn.async_exec(cmd::zadd(board, scores), asio::use_awaitable);
  expect(added.value() == 4, "ZADD added four players");

  // linus wins a round: +50 points, and the new total comes back.
  auto linus = co_await conn.async_exec(cmd::zincrby(board, 50, "linus"), asio::use_awaitable);
  std::printf("linus scores 50, now at %g\n", linus.value());
  expect(linus.value() == 130, "ZINCRBY returned the new score");

  // The top three, highest score first.
  auto top = co_await conn.async_exec(cmd::zrevrange_withscores(board, 0, 2), asio::use_awaitable);
  int place = 0;
  for (const auto& [player, score] : top.value())
    std::printf("#%d %-6s %g\n", ++place, player.c_str(), score);
  const cmd::scored expected{{"linus", 130}, {"ada", 120}, {"grace", 95}};
  expect(top.value() == expected, "the top three in order");

  // One player's place (0 is the top), and nullopt for someone not on the board.
  auto ken = co_await conn.async_exec(cmd::zrevrank(board, "ken"), asio::use_awaitable);
  auto nobody = co_await conn.async_exec(cmd::zrevrank(board, "nobody"), asio::use_awaitable);
  expect(ken.value().has_value() && !nobody.value().has_value(), "ZREVRANK found only ken");
  std::printf("ken is #%lld of 4\n", static_cast<long long>(*ken.value() + 1));
  expect(*ken.value() == 3, "ken is last");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("leaderboard", ioc, session(conn), [&] { conn.close(); });
}
