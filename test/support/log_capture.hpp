#pragma once

// Captures what redcoro logs, at trace level, so that a test can count events and check
// that no line carries a secret.

#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::test {

class log_capture {
 public:
  log_capture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1 << 16)),
        logger_(std::make_shared<spdlog::logger>("redcoro-test", sink_)) {
    logger_->set_level(spdlog::level::trace);
  }

  /// For connection_config::logger.
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

  std::vector<std::string> lines() const { return sink_->last_formatted(); }

  /// Lines that contain `text`.
  std::size_t count(std::string_view text) const {
    const auto all = lines();
    return static_cast<std::size_t>(std::count_if(
        all.begin(), all.end(), [&](const auto& l) { return l.find(text) != std::string::npos; }));
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace redcoro::test
