// A game loop drives the connection from its frame: io_context::poll() runs whatever is
// ready and returns at once, so the frame never blocks on the network and no extra thread
// is needed. Callbacks fire inside poll(), on the game thread.
//   game_loop [port]
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace asio = boost::asio;
namespace proto = redcoro::proto;

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection_config cfg;
  if (argc > 1) cfg.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  redcoro::connection conn(ioc, cfg);
  conn.async_run(asio::detached);

  // Each frame saves the player's score unless the previous save is still in flight.
  proto::request save;
  save.push("ZINCRBY", "leaderboard", 10, "player:1");
  proto::response<double> score;
  bool saving = false;
  int saves = 0;
  const auto frame_time = std::chrono::milliseconds(16);
  for (int frame = 0; frame < 120; ++frame) {
    const auto start = std::chrono::steady_clock::now();
    // ... simulate the world ...
    if (!saving) {
      saving = true;
      conn.async_exec(save, score, [&](redcoro::error_code ec, std::size_t) {
        saving = false;
        if (!ec) ++saves;
      });
    }
    ioc.poll();  // network work for this frame; never blocks
    std::this_thread::sleep_until(start + frame_time);
  }
  std::printf("120 frames, %d saves, score %.0f\n", saves,
              std::get<0>(score).has_value() ? *std::get<0>(score) : 0.0);
  conn.close();
  ioc.run_for(std::chrono::seconds(1));  // let the connection wind down
  return 0;
}
