#pragma once

// What a connection counts about its requests (connection_config::metrics) and tells an
// observer (connection_config::observer), with no I/O: the connection calls it at the points
// where a request starts and ends, a reply is an error, bytes go out, a session begins and
// ends. Tested without sockets (test/client/meter.cpp).

#include <redcoro/client/metrics.hpp>
#include <redcoro/proto/request.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redcoro::detail {

class meter {
 public:
  using clock = std::chrono::steady_clock;

  meter(bool on, std::shared_ptr<request_observer> observer);

  /// True when requests are timed: metrics on, or an observer.
  bool timing() const noexcept { return on_ || observer_; }

  /// A request was started (the caller stamps its start with the time).
  void started(const proto::request& r, std::string_view node) {
    ++requests_;
    if (observer_) [[unlikely]]
      tell_started(r, node);
  }
  /// A started request ended at `at` (its replies read then, or failed) with `ec`.
  void finished(const proto::request& r, clock::time_point started_at, clock::time_point at,
                error_code ec, std::string_view node) {
    if (!ec && on_ && !observer_) [[likely]] {
      // The common case, kept to a table index and one histogram record.
      ++completed_[0];
      record(label_of(r), at - started_at);
      return;
    }
    finished_otherwise(r, started_at, at, ec, node);
  }
  /// A top-level error reply to a started request: "WRONGTYPE Operation against...".
  void error_reply(std::string_view message);
  void wrote(std::size_t bytes) noexcept { bytes_written_ += on_ ? bytes : 0; }
  void connected() noexcept { ++connects_; }
  void disconnected() noexcept { ++disconnects_; }
  void pushed() noexcept { ++pushes_; }

  /// The counters and histograms; the caller fills in the gauges and bytes read.
  connection_metrics snapshot() const;

  /// The label of a request: its command's table index, or one of the three below.
  static std::size_t label_of(const proto::request& r) noexcept {
    return r.commands() == 1 ? r.command_id(0) : several_label(r);
  }
  static std::string_view label_name(std::size_t label) noexcept;

 private:
  static std::size_t several_label(const proto::request& r) noexcept;
  void tell_started(const proto::request& r, std::string_view node);
  void finished_otherwise(const proto::request& r, clock::time_point started_at,
                          clock::time_point at, error_code ec, std::string_view node);
  void record(std::size_t label, clock::duration took) {
    auto& c = by_label_[label];
    if (!c) [[unlikely]]
      c = make_label(label);
    c->latency.record(static_cast<std::uint64_t>(
        std::max<std::int64_t>(std::chrono::nanoseconds(took).count(), 0)));
  }
  static std::unique_ptr<command_metrics> make_label(std::size_t label);

  static constexpr std::size_t other = 0;  // a command without an entry in command_info
  static constexpr std::size_t pipeline = 256;
  static constexpr std::size_t multi = 257;
  static constexpr std::size_t labels = 258;
  static constexpr std::size_t max_error_codes = 32;

  bool on_;
  std::shared_ptr<request_observer> observer_;
  std::uint64_t requests_ = 0;
  std::array<std::uint64_t, request_outcomes> completed_{};
  std::vector<std::pair<std::string, std::uint64_t>> errors_;
  std::uint64_t bytes_written_ = 0, connects_ = 0, disconnects_ = 0, pushes_ = 0;
  // Allocated at a command's first replied request (38 KiB each): idle connections and
  // unused commands cost a pointer.
  std::array<std::unique_ptr<command_metrics>, labels> by_label_{};
};

}  // namespace redcoro::detail
