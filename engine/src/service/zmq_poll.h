// zmq::poll for the service's threads: a signal's interruption (SIGHUP asks
// for a reload) reads as "nothing ready" instead of an exception.
#pragma once

#include <cerrno>
#include <chrono>
#include <zmq.hpp>

namespace tailor {

inline void PollQuietly(zmq::pollitem_t* items, size_t n, std::chrono::milliseconds timeout) {
  try {
    zmq::poll(items, n, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    for (size_t i = 0; i < n; ++i) items[i].revents = 0;
  }
}

}  // namespace tailor
