// Force-included (-include) into every C++ translation unit of a program built with
// REDCORO_IO_URING, before Asio: see client/README.md, "The io_uring backend".
//
// Asio 1.26 (Boost 1.81, Debian 12) takes submission queue entries with io_uring_get_sqe() and
// sets their user data only for reads, writes and the like: its cancellations and timeout
// removals keep the user data the ring slot held from an earlier operation. liburing 2.3's
// prep functions no longer clear it, so the kernel's answer to a cancellation arrives
// addressed to whatever operation last used that slot: a read of a live socket completes with
// 0 bytes (end of file) or an error it never had. Asio 1.27 fixed it by clearing the user data
// of every entry it takes; this does the same, one level down, for every Asio call.
#pragma once

#include <liburing.h>

inline ::io_uring_sqe* redcoro_io_uring_get_sqe(::io_uring* ring) noexcept {
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
  if (sqe) ::io_uring_sqe_set_data(sqe, nullptr);
  return sqe;
}

#define io_uring_get_sqe redcoro_io_uring_get_sqe
