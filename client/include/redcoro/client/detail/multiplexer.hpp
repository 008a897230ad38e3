#pragma once

#include <redcoro/client/detail/exec_entry.hpp>
#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/client/detail/ring.hpp>
#include <redcoro/proto/adapter.hpp>
#include <redcoro/proto/node.hpp>
#include <redcoro/proto/pubsub.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace redcoro::detail {

struct mux_stats {
  std::size_t waiting = 0;
  std::size_t in_flight = 0;
};

/// The request the server is answering now (the head of the FIFO), for the connection's
/// stall detection.
struct head_of_line {
  clock::time_point written_at;
  /// Its longest block time in ms (BLPOP, XREAD BLOCK...): -1 when nothing blocks, 0 when
  /// something blocks without a limit.
  std::int64_t block_ms = -1;
};

/// Matches requests with replies on one connection, with no I/O.
///
/// Requests wait in a list until the writer takes all of them at once (prepare_write: their
/// payloads are copied into one buffer, so a caller may give up on a request at any time
/// without the socket still pointing into it). Written requests sit in a FIFO of slots, one
/// per request, in the order the server answers. Top-level push messages (`>`, RESP3) go to
/// the push sink instead. A request that times out or is cancelled after it was written
/// leaves its slot behind with no entry: its replies are read and dropped, so the next reply
/// still reaches the right caller.
///
/// Completing an entry may run user code that adds or cancels requests; every method leaves
/// the multiplexer consistent before it completes anything.
class multiplexer {
 public:
  explicit multiplexer(std::size_t max_queued = 0) : max_queued_(max_queued) {}

  /// Queues a request. Fails with error::queue_full when max_queued requests (waiting or in
  /// flight) are already there. A request expecting no reply still goes through the FIFO
  /// so that it completes after it was written.
  std::error_code add(exec_entry& e);

  /// Removes a request that was not written, or detaches a written one from its slot.
  /// Returns false when the entry is not in the multiplexer. Does not complete it.
  bool remove(exec_entry& e) noexcept;

  /// True when prepare_write() has something to send: priority requests at any time, the
  /// others once the connection is ready.
  bool has_writable() const noexcept;

  /// Copies the payloads of every writable request into one buffer and moves them to the
  /// FIFO. The view stays valid until the next prepare_write().
  std::string_view prepare_write(clock::time_point now = clock::now());
  /// From now on, prepare_write() passes ordinary (not priority) requests through `p`
  /// once it is loaded: connection_config::key_prefix. With `strip_replies`
  /// (connection_config::strip_key_prefix), the key names in their replies (key_reply) and
  /// in keyspace notifications lose the prefix before an adapter or the push sink sees them.
  void set_key_prefixer(const key_prefixer* p, bool strip_replies = false) noexcept {
    prefixer_ = p;
    strip_ = p && strip_replies;
  }

  /// The buffer of the last prepare_write() is on the wire. Requests without commands are
  /// over: they are appended to `done`.
  void commit_write(std::vector<exec_entry*>& done);

  /// Routes one node of the message being read. The first node of a top-level push goes to
  /// the push sink with every node after it until the message ends.
  ///
  /// The type of each reply is checked against what its command can answer
  /// (proto::reply_fits): a `+PONG` where a GET waits means the stream is out of step with the
  /// requests (a proxy's bug, a surplus reply). Such a reply reaches no adapter, and
  /// on_message_done reports error::out_of_sync.
  void on_node(const proto::node& n);

  /// The message being read is complete (`bytes`: its size on the wire). Returns the entry
  /// whose last reply it was (removed from the FIFO; the caller completes it), or nullptr.
  /// Sets `ec` to error::unexpected_reply for a reply no request waits for.
  ///
  /// A SUBSCRIBE-family command is answered by its confirmations, one push per name (they
  /// also go to the push sink), or, when the server refuses it (NOPERM, MOVED, CROSSSLOT...),
  /// by one error reply, which goes to the request's adapter as its next reply.
  exec_entry* on_message_done(std::size_t bytes, std::error_code& ec);

  /// The connection was lost or reset. Written requests marked retry_if_unanswered go back
  /// to the front of the waiting list; the others are appended to `failed` (with the
  /// reason connection_lost). Waiting requests stay. Also forgets any partial message.
  void on_connection_lost(std::vector<exec_entry*>& failed);

  /// Removes every request whose deadline is at or before `now` into `expired`, and returns
  /// the earliest deadline among those left (time_point::max() if none).
  clock::time_point expire(clock::time_point now, std::vector<exec_entry*>& expired);

  /// Removes every request (waiting and written) into `all`.
  void drain(std::vector<exec_entry*>& all);

  /// Requests with priority only are written until the connection is ready.
  void set_ready(bool ready) noexcept { ready_ = ready; }
  bool ready() const noexcept { return ready_; }

  /// Without a sink, push messages are read and dropped.
  void set_push_sink(push_sink* sink) noexcept { push_sink_ = sink; }
  /// RESP2 pub/sub: top-level arrays whose first element is a pub/sub kind ("message",
  /// "subscribe", ...) go to the push sink too.
  void set_resp2_pushes(bool on) noexcept { resp2_pushes_ = on; }

  /// The request whose reply is being read (or comes next): nullptr when none is, or its
  /// caller gave up.
  const exec_entry* answering() const noexcept {
    return slots_.empty() ? nullptr : slots_.front().entry;
  }
  /// Requests waiting to be written, and slots in the FIFO (detached ones included).
  mux_stats stats() const noexcept { return {waiting_, slots_.size()}; }
  bool idle() const noexcept { return waiting_ == 0 && slots_.empty(); }
  /// The request being answered, if any (detached ones included: their replies are due).
  std::optional<head_of_line> head() const noexcept {
    if (slots_.empty()) return std::nullopt;
    return head_of_line{slots_.front().written_at, slots_.front().block_ms};
  }

  /// True once after a written blocking command (BLPOP, XREAD BLOCK, WAIT...) lost its caller
  /// (timeout, cancellation) while the server may still hold it blocked: the connection
  /// then unblocks it from another connection (CLIENT UNBLOCK), so that what comes after it
  /// is not stuck behind it.
  bool take_unblock() noexcept { return std::exchange(unblock_wanted_, false); }
  /// Commands that give back what a blocking pop took after its caller gave up (the late
  /// reply of a BLPOP: LPUSH the element again, see proto::append_hand_back). The connection
  /// sends them; keys are already as on the wire (prefixed).
  std::vector<proto::request>& hand_backs() noexcept { return hand_backs_; }

 private:
  // A written request in slots_. Filled in place (ring::emplace_back) and reset in place
  // when answered, keeping its vectors' buffers: no slot is built, moved or destroyed per
  // request.
  struct slot {
    slot() noexcept { reset(); }
    // Its state when new; the one place that says it.
    void reset() noexcept {
      entry = nullptr;
      commands = answered = 0;
      out_of_band.clear();
      next_out_of_band = 0;
      confirmed = 0;
      written_at = {};
      block_ms = -1;
      check_types = key_replies = false;
      give_back.clear();
    }

    exec_entry* entry;     // nullptr once the caller gave up: replies are dropped
    std::size_t commands;  // the request's
    std::size_t answered;  // of them
    // The request's commands answered out of band (a copy: the caller may give up on the
    // request and free it). Empty but for (un)subscribing requests.
    std::vector<proto::out_of_band_command> out_of_band;
    std::size_t next_out_of_band;  // the first of them not answered
    std::uint32_t confirmed;       // confirmations that one has had
    clock::time_point written_at;
    std::int64_t block_ms;  // see head_of_line
    bool check_types;       // replies checked against their commands (not in MULTI)
    // Some of its replies name keys and lose the prefix (strip_key_prefix): which, in
    // key_replies_ (a flag here, the list there).
    bool key_replies;
    // After the caller gave up: its blocking pops not yet answered (index, bytes as sent),
    // whose late replies are given back.
    std::vector<std::pair<std::size_t, std::string>> give_back;

    // The out-of-band command answered next, or nullptr when it is an ordinary one.
    const proto::out_of_band_command* current() const noexcept {
      return next_out_of_band < out_of_band.size() &&
                     out_of_band[next_out_of_band].index == answered
                 ? &out_of_band[next_out_of_band]
                 : nullptr;
    }
  };

  // The caller of a written request gave up: its replies are dropped from now on, and its
  // blocking commands are unblocked and what they took given back.
  void detach(slot& s);
  // The first node of a reply for the head slot: checks its type.
  void begin_reply(const proto::node& n) noexcept;
  void link_back(exec_entry& e) noexcept;
  void link_front(exec_entry& e) noexcept;
  void unlink(exec_entry& e) noexcept;
  bool writable(const exec_entry& e) const noexcept { return ready_ || e.priority; }
  // strip_key_prefix: a reply node of the head slot, which has key_replies, to its adapter
  // (its list is key_replies_.front()).
  void deliver_stripped(const slot& s, const proto::node& n);
  // Whether `n` is where a reply of `shape` names a key (tracks the position in the reply).
  bool names_key(key_reply shape, const proto::node& n) noexcept;
  // strip_key_prefix: a push node as the sink gets it (a keyspace notification's key
  // without the prefix).
  const proto::node& strip_push(const proto::node& n);

  exec_entry* head_ = nullptr;  // waiting list, priority entries first
  exec_entry* tail_ = nullptr;
  std::size_t waiting_ = 0;
  ring<slot> slots_;  // no allocation per request once warm
  std::string write_buffer_;
  const key_prefixer* prefixer_ = nullptr;
  bool strip_ = false;
  // For each slot with key_replies, in FIFO order, its commands whose replies name keys.
  ring<std::vector<key_reply_at>> key_replies_;
  std::vector<key_reply_at> found_;  // prepare_write's, reused
  // Where the reply being stripped is: its type, the nodes seen at depth 1, and at depth 2
  // within the current depth-1 aggregate.
  proto::type reply_top_ = proto::type::null;
  std::size_t at1_ = 0, at2_ = 0;
  // The push being stripped: its elements seen, its kind, whether it is a keyevent message.
  std::size_t push_at_ = 0;
  std::optional<proto::pubsub_kind> push_message_;
  bool push_keyevent_ = false;
  proto::node stripped_;      // a push node with another value
  std::string push_channel_;  // the channel a keyspace notification is given under
  std::size_t max_queued_;
  std::vector<exec_entry*> written_without_replies_;
  push_sink* push_sink_ = nullptr;
  bool ready_ = false;
  // What the message being read is, decided by its first node that is not an attribute.
  void route(const proto::node& n);

  // The head slot answered one more command; returns its entry once all are answered.
  exec_entry* answer_one();

  enum class reading : std::uint8_t { none, reply, push, undecided } reading_ = reading::none;
  bool out_of_sync_ = false;  // the message being read answers nothing that waits
  bool multi_open_ = false;   // written MULTI without EXEC or DISCARD yet
  bool unblock_wanted_ = false;
  // The late reply of a blocking pop being read (slot::give_back), and what it gives back.
  // (An index into the head slot's give_back, not a pointer: the writer may add slots, and
  // move them, while a long reply is read.)
  static constexpr std::size_t no_late = static_cast<std::size_t>(-1);
  std::size_t late_ = no_late;
  proto::value late_value_;
  proto::adapter<proto::value> late_adapter_;
  std::vector<proto::request> hand_backs_;
  bool resp2_pushes_ = false;
  // The push being read: what its first element says it is.
  std::optional<proto::pubsub_kind> push_kind_;
  bool push_first_ = false;
  proto::node held_;  // the array header while reading_ is undecided
};

}  // namespace redcoro::detail
