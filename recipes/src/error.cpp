#include <redcoro/recipes/error.hpp>

#include <string>

namespace redcoro::recipes {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redcoro.recipes"; }

  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::lock_not_held:
        return "the lock is not held by this token";
      case error::lock_wait_timeout:
        return "the lock stayed busy for the whole wait";
      case error::lock_lost:
        return "the lock's lease could not be extended: it may be held by another";
      case error::session_not_found:
        return "no such session, or it expired";
      case error::worker_stopped:
        return "the stream worker was stopped";
      case error::invalid_argument:
        return "invalid argument";
    }
    return "unknown redcoro.recipes error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace redcoro::recipes
