#pragma once

// What redcoro-bench sends: keys drawn from a pattern, values it can recognise again, and
// the SET:GET mix or the user's command templates. Every coroutine has its own generator,
// seeded from --seed and its number, so a run is repeatable.

#include "tool/options.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::proto {
class request;
}

namespace redcoro::bench {

/// Draws key numbers in [0, key_space).
class key_chooser {
 public:
  key_chooser(const options& o, std::uint64_t stream, std::uint64_t streams);
  std::uint64_t next();

 private:
  std::uint64_t zipf();  // rejection-inversion sampling (Hörmann and Derflinger): no table

  key_pattern_kind kind_;
  std::uint64_t space_;
  std::mt19937_64 rng_;
  std::uint64_t sequence_, step_;
  double s_ = 0, h_x1_ = 0, h_n_ = 0, shortcut_ = 0;  // zipf constants
  std::normal_distribution<double> normal_;
};

/// Key names and the values written under them. A value depends only on its key (and the
/// size settings), so a GET can be checked without remembering what was written.
struct key_values {
  explicit key_values(const options& o);
  static std::string key_name(std::uint64_t k) {
    std::string out;
    key_name(k, out);
    return out;
  }
  static void key_name(std::uint64_t k, std::string& out);
  /// Writes the value of key k into `out`.
  void value(std::uint64_t k, std::string& out) const;

  std::uint32_t min_size, max_size;
};

/// Keys this run has written (atomic bits, shared by all threads): a GET of one of them must
/// return its value; a GET of another may find data from an earlier run and is not checked.
class written_set {
 public:
  explicit written_set(std::uint64_t key_space) : bits_((key_space + 63) / 64) {}
  void mark(std::uint64_t k) noexcept { bits_[k / 64].fetch_or(bit(k), std::memory_order_relaxed); }
  bool contains(std::uint64_t k) const noexcept {
    return bits_[k / 64].load(std::memory_order_relaxed) & bit(k);
  }

 private:
  static std::uint64_t bit(std::uint64_t k) noexcept { return std::uint64_t{1} << (k % 64); }
  std::vector<std::atomic<std::uint64_t>> bits_;
};

/// What one command of a request was, for checking its reply.
struct sent_command {
  enum class kind : unsigned char { set, get, other } what;
  std::uint64_t key;
};

/// One coroutine's source of requests.
class request_maker {
 public:
  request_maker(const options& o, const key_values& kv, std::uint64_t stream,
                std::uint64_t streams);
  /// Clears `req` and fills it with options::pipeline commands, described in `sent`.
  void next(proto::request& req, std::vector<sent_command>& sent);

 private:
  const options& o_;
  const key_values& kv_;
  key_chooser keys_;
  std::mt19937_64 mix_;
  std::string key_, value_;
  std::vector<std::string> words_;
  unsigned total_weight_ = 0;
};

}  // namespace redcoro::bench
