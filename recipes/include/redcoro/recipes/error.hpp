#pragma once

#include <system_error>
#include <type_traits>

namespace redcoro::recipes {

/// Why a recipe operation did not do what was asked. Values start at 1; 0 means success.
/// Errors of the layers underneath (a lost connection, a timeout, a server error reply) are
/// passed through as they are.
enum class error {
  // Locks (lock.hpp).
  lock_not_held = 1,  ///< release or extend by a token that no longer holds the lock
  lock_wait_timeout,  ///< acquire: the lock stayed busy for the whole wait bound
  lock_lost,          ///< the watchdog could not extend the lease: another may hold it now

  // Sessions (session.hpp).
  session_not_found,  ///< no such session, or it expired (sliding TTL or absolute cap)

  // Stream workers (stream_worker.hpp).
  worker_stopped,  ///< the worker was stopped before the operation could run

  // Arguments.
  invalid_argument,  ///< a zero or negative limit, lease, window or TTL; an empty name
};

/// The category of redcoro::recipes::error; its name is "redcoro.recipes".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace redcoro::recipes

template <>
struct std::is_error_code_enum<redcoro::recipes::error> : std::true_type {};
