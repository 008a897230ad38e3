#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/client/detail/multiplexer.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/proto/command_info.hpp>

#include <algorithm>
#include <cassert>

namespace redcoro::detail {

void multiplexer::link_back(exec_entry& e) noexcept {
  e.prev = tail_;
  e.next = nullptr;
  (tail_ ? tail_->next : head_) = &e;
  tail_ = &e;
  ++waiting_;
  e.st = exec_entry::state::waiting;
}

void multiplexer::link_front(exec_entry& e) noexcept {
  e.prev = nullptr;
  e.next = head_;
  (head_ ? head_->prev : tail_) = &e;
  head_ = &e;
  ++waiting_;
  e.st = exec_entry::state::waiting;
}

void multiplexer::unlink(exec_entry& e) noexcept {
  (e.prev ? e.prev->next : head_) = e.next;
  (e.next ? e.next->prev : tail_) = e.prev;
  e.prev = e.next = nullptr;
  --waiting_;
  e.st = exec_entry::state::idle;
}

std::error_code multiplexer::add(exec_entry& e) {
  const std::size_t replies = e.req->expected_replies();
  if (e.adapter.replies() != proto::any_reply_count && e.adapter.replies() < replies)
    return error::response_too_short;
  if (!e.priority && max_queued_ != 0 && waiting_ + slots_.size() >= max_queued_)
    return error::queue_full;
  e.replies_seen = 0;
  e.bytes_read = 0;
  e.adapter.prepare(replies);
  if (e.priority) {
    // After the priority requests already waiting, before every ordinary one.
    exec_entry* after = head_;
    exec_entry* last_priority = nullptr;
    while (after && after->priority) {
      last_priority = after;
      after = after->next;
    }
    if (!last_priority) {
      link_front(e);
    } else {
      e.prev = last_priority;
      e.next = last_priority->next;
      (e.next ? e.next->prev : tail_) = &e;
      last_priority->next = &e;
      ++waiting_;
      e.st = exec_entry::state::waiting;
    }
  } else {
    link_back(e);
  }
  return {};
}

bool multiplexer::remove(exec_entry& e) noexcept {
  if (e.st == exec_entry::state::waiting) {
    unlink(e);
    return true;
  }
  if (e.st == exec_entry::state::written) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_.at(i).entry == &e) {
        detach(slots_.at(i));
        e.st = exec_entry::state::idle;
        return true;
      }
    }
    auto it = std::find(written_without_replies_.begin(), written_without_replies_.end(), &e);
    if (it != written_without_replies_.end()) {
      written_without_replies_.erase(it);
      e.st = exec_entry::state::idle;
      return true;
    }
  }
  return false;
}

bool multiplexer::has_writable() const noexcept {
  return head_ && writable(*head_);
}

std::string_view multiplexer::prepare_write(clock::time_point now) {
  write_buffer_.clear();
  while (head_ && writable(*head_)) {
    exec_entry& e = *head_;
    unlink(e);
    const proto::request& r = *e.req;
    bool key_replies = false;
    if (prefixer_ && !e.priority && !e.wire_keys && prefixer_->loaded()) {
      found_.clear();
      prefixer_->rewrite(r, write_buffer_, strip_ ? &found_ : nullptr);
      key_replies = !found_.empty();
    } else {
      write_buffer_.append(r.payload());
    }
    e.st = exec_entry::state::written;
    const std::size_t commands = r.commands();
    if (commands == 0) {
      written_without_replies_.push_back(&e);
      continue;
    }
    if (key_replies) key_replies_.push_back(found_);
    slot& sl = slots_.emplace_back();
    sl.entry = &e;
    sl.commands = commands;
    sl.out_of_band = r.out_of_band();
    sl.key_replies = key_replies;
    sl.written_at = now;
    if (const auto block = r.block_time()) sl.block_ms = block->count();
    // Inside MULTI every command answers +QUEUED; such requests are not checked.
    sl.check_types = !multi_open_ && !r.has_transaction_commands();
    if (r.has_transaction_commands()) {
      for (std::size_t i = 0; i < commands; ++i) {
        const proto::command_info* c = proto::command_by_id(r.command_id(i));
        if (c && c->tx != proto::tx_role::none) multi_open_ = c->tx == proto::tx_role::multi;
      }
    }
  }
  return write_buffer_;
}

void multiplexer::detach(slot& s) {
  const proto::request& r = *s.entry->req;
  s.entry = nullptr;
  if (s.block_ms < 0) return;
  for (std::size_t i = s.answered; i < s.commands; ++i) {
    const proto::command_info* c = proto::command_by_id(r.command_id(i));
    if (!c || c->blocking == proto::block_arg::none) continue;
    unblock_wanted_ = true;
    if (c->give_back == proto::hand_back::none) continue;
    std::string bytes(r.command_bytes(i));
    if (prefixer_ && prefixer_->loaded()) {
      std::string wire;
      prefixer_->rewrite(bytes, wire);
      bytes = std::move(wire);
    }
    s.give_back.emplace_back(i, std::move(bytes));
  }
}

void multiplexer::begin_reply(const proto::node& n) noexcept {
  if (slots_.empty()) return;  // reported at the end of the message
  const slot& s = slots_.front();
  if (!s.check_types || !s.entry || s.current()) return;
  if (!proto::reply_fits(s.entry->req->command_id(s.answered), n.data_type)) out_of_sync_ = true;
}

void multiplexer::commit_write(std::vector<exec_entry*>& done) {
  for (exec_entry* e : written_without_replies_) {
    e->st = exec_entry::state::done;
    done.push_back(e);
  }
  written_without_replies_.clear();
}

void multiplexer::on_node(const proto::node& n) {
  if (reading_ == reading::none && !n.in_attribute) {
    if (n.depth == 0 && n.data_type == proto::type::push) {
      reading_ = reading::push;
    } else if (resp2_pushes_ && n.depth == 0 && n.data_type == proto::type::array &&
               n.aggregate_size > 0 && n.aggregate_size != proto::node::unbounded) {
      // RESP2 pub/sub sends plain arrays: its first element tells.
      reading_ = reading::undecided;
      held_ = n;
      return;
    } else {
      reading_ = reading::reply;
      begin_reply(n);
    }
  }
  if (reading_ == reading::undecided) {
    const bool pubsub = proto::pubsub_kind_of_frame(n.value).has_value();
    reading_ = pubsub ? reading::push : reading::reply;
    if (!pubsub) begin_reply(held_);
    route(held_);
  }
  route(n);
}

void multiplexer::route(const proto::node& n) {
  if (reading_ == reading::push) {
    if (n.depth == 0 && !n.in_attribute) {
      // Its kind matters only to an (un)subscribe waiting for confirmations.
      push_first_ = !slots_.empty() && slots_.front().current();
      push_kind_.reset();
    } else if (push_first_ && n.depth == 1 && !n.in_attribute) {
      push_first_ = false;
      push_kind_ = proto::pubsub_kind_of_frame(n.value);
    }
    if (push_sink_) push_sink_->on_push_node(strip_ ? strip_push(n) : n);
    return;
  }
  // A reply (or the attribute before it): the request at the head of the FIFO owns it,
  // unless it gave up on it.
  if (slots_.empty() || out_of_sync_) return;  // reported at the end of the message
  const slot& s = slots_.front();
  if (s.entry) {
    if (s.key_replies) [[unlikely]]
      deliver_stripped(s, n);
    else
      s.entry->adapter.on_node(s.entry->replies_seen, n);
    return;
  }
  // The late reply of a blocking pop whose caller gave up: kept, to give back what it took.
  if (s.give_back.empty()) return;
  if (n.depth == 0 && !n.in_attribute) {
    late_ = no_late;
    for (std::size_t k = 0; k < s.give_back.size(); ++k)
      if (s.give_back[k].first == s.answered) late_ = k;
    late_value_ = {};
    late_adapter_ = {};
  }
  if (late_ != no_late && !n.in_attribute) {
    proto::reply_error unused;
    late_adapter_.on_node(late_value_, n, n.depth, unused);
  }
}

bool multiplexer::names_key(key_reply shape, const proto::node& n) noexcept {
  switch (n.depth) {
    case 0:
      reply_top_ = n.data_type;
      at1_ = at2_ = 0;
      return false;
    case 1: {
      const std::size_t i = at1_++;
      at2_ = 0;
      if (shape == key_reply::array) return true;
      if (shape == key_reply::first) return i == 0;
      if (shape == key_reply::streams) return reply_top_ == proto::type::map && i % 2 == 0;
      return false;
    }
    case 2: {
      const std::size_t i = at2_++;
      if (shape == key_reply::scan) return at1_ == 2;  // the second element: the keys
      if (shape == key_reply::streams) return reply_top_ != proto::type::map && i == 0;
      return false;
    }
    default:
      return false;
  }
}

void multiplexer::deliver_stripped(const slot& s, const proto::node& n) {
  // Views shortened in place: no copy, and only a name that has the prefix loses it.
  key_reply shape = key_reply::none;
  for (const key_reply_at& k : key_replies_.front())
    if (k.command == s.answered) shape = k.shape;
  if (shape == key_reply::none || n.in_attribute || !names_key(shape, n) ||
      (n.data_type != proto::type::blob_string && n.data_type != proto::type::simple_string) ||
      !n.value.starts_with(prefixer_->prefix())) {
    s.entry->adapter.on_node(s.entry->replies_seen, n);
    return;
  }
  proto::node m = n;
  m.value.remove_prefix(prefixer_->prefix().size());
  s.entry->adapter.on_node(s.entry->replies_seen, m);
}

const proto::node& multiplexer::strip_push(const proto::node& n) {
  if (n.in_attribute) return n;
  if (n.depth == 0) {
    push_at_ = 0;
    push_message_.reset();
    push_keyevent_ = false;
    return n;
  }
  if (n.depth != 1) return n;
  const std::size_t i = push_at_++;
  if (i == 0) {
    push_message_ = proto::pubsub_kind_of_frame(n.value);
    return n;
  }
  // Keyspace notifications come as `message` or `pmessage` (never on a shard channel).
  if (push_message_ != proto::pubsub_kind::message && push_message_ != proto::pubsub_kind::pmessage)
    return n;
  const std::size_t channel_at = push_message_ == proto::pubsub_kind::pmessage ? 2 : 1;
  const std::string& prefix = prefixer_->prefix();
  if (i == channel_at) {
    // "__keyspace@<db>__:<key>" names the key; "__keyevent@<db>__:<event>" has it as payload.
    const std::string_view v = n.value;
    const bool space = v.starts_with("__keyspace@");
    if (!space && !v.starts_with("__keyevent@")) return n;
    const std::size_t end = v.find("__:", 11);
    if (end == std::string_view::npos) return n;
    if (!space) {
      push_keyevent_ = true;
      return n;
    }
    const std::string_view key = v.substr(end + 3);
    if (!key.starts_with(prefix)) return n;
    // The prefix sits inside the name: a copy, made for keyspace notifications only.
    push_channel_.assign(v.substr(0, end + 3));
    push_channel_.append(key.substr(prefix.size()));
    stripped_ = n;
    stripped_.value = push_channel_;
    return stripped_;
  }
  if (i == channel_at + 1 && push_keyevent_ && n.value.starts_with(prefix)) {
    stripped_ = n;
    stripped_.value.remove_prefix(prefix.size());
    return stripped_;
  }
  return n;
}

exec_entry* multiplexer::on_message_done(std::size_t bytes, std::error_code& ec) {
  const reading kind = reading_;
  reading_ = reading::none;
  if (kind == reading::push) {
    if (push_sink_) push_sink_->on_push_done();
    // A confirmation of the (un)subscribe command the head request waits for?
    if (slots_.empty() || !push_kind_) return nullptr;
    slot& s = slots_.front();
    const proto::out_of_band_command* c = s.current();
    if (!c || c->kind != *push_kind_) return nullptr;  // a message, or not ours
    if (s.entry) s.entry->bytes_read += bytes;
    // Unsubscribing from everything: only the server knows how many confirmations come; the
    // first answers it, the others go to the push sink like any.
    if (++s.confirmed < c->confirmations) return nullptr;
    return answer_one();
  }
  if (slots_.empty()) {
    ec = error::unexpected_reply;
    return nullptr;
  }
  if (std::exchange(out_of_sync_, false)) {
    ec = error::out_of_sync;
    return nullptr;
  }
  // A reply, or the error that refused the out-of-band command the head request waits for:
  // both go to the adapter.
  if (exec_entry* e = slots_.front().entry) {
    ++e->replies_seen;
    e->bytes_read += bytes;
  } else if (late_ != no_late) {
    proto::request back;
    if (proto::append_hand_back(slots_.front().give_back[late_].second, late_value_, back))
      hand_backs_.push_back(std::move(back));
    late_ = no_late;
    late_value_ = {};
  }
  return answer_one();
}

exec_entry* multiplexer::answer_one() {
  slot& s = slots_.front();
  if (s.current()) {
    ++s.next_out_of_band;
    s.confirmed = 0;
  }
  if (++s.answered != s.commands) return nullptr;
  exec_entry* e = s.entry;
  if (s.key_replies) key_replies_.pop_front();
  slots_.pop_front();
  if (e) e->st = exec_entry::state::done;
  return e;
}

void multiplexer::on_connection_lost(std::vector<exec_entry*>& failed) {
  reading_ = reading::none;
  out_of_sync_ = false;
  multi_open_ = false;
  late_ = no_late;
  // Retried requests go back to the front in their original order, behind nothing: the
  // connection queues its handshake (priority) before them afterwards.
  exec_entry* retry_tail = nullptr;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    exec_entry* e = slots_.at(i).entry;
    if (!e) continue;
    if (e->req->get_config().retry_if_unanswered) {
      e->replies_seen = 0;
      e->bytes_read = 0;
      if (!retry_tail) {
        link_front(*e);
      } else {
        e->prev = retry_tail;
        e->next = retry_tail->next;
        (e->next ? e->next->prev : tail_) = e;
        retry_tail->next = e;
        ++waiting_;
        e->st = exec_entry::state::waiting;
      }
      retry_tail = e;
    } else {
      e->st = exec_entry::state::done;
      failed.push_back(e);
    }
  }
  slots_.clear();
  key_replies_.clear();
  // Written without replies and not yet committed: the write may not have happened.
  for (exec_entry* e : written_without_replies_) {
    e->st = exec_entry::state::done;
    failed.push_back(e);
  }
  written_without_replies_.clear();
}

clock::time_point multiplexer::expire(clock::time_point now, std::vector<exec_entry*>& expired) {
  clock::time_point next = clock::time_point::max();
  for (exec_entry* e = head_; e;) {
    exec_entry* following = e->next;
    if (e->deadline <= now) {
      unlink(*e);
      e->st = exec_entry::state::done;
      expired.push_back(e);
    } else {
      next = std::min(next, e->deadline);
    }
    e = following;
  }
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slot& s = slots_.at(i);
    if (!s.entry) continue;
    if (s.entry->deadline <= now) {
      exec_entry* e = s.entry;
      detach(s);
      e->st = exec_entry::state::done;
      expired.push_back(e);
    } else {
      next = std::min(next, s.entry->deadline);
    }
  }
  return next;
}

void multiplexer::drain(std::vector<exec_entry*>& all) {
  while (head_) {
    exec_entry* e = head_;
    unlink(*e);
    e->st = exec_entry::state::done;
    all.push_back(e);
  }
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (exec_entry* e = slots_.at(i).entry) {
      e->st = exec_entry::state::done;
      all.push_back(e);
    }
  }
  slots_.clear();
  key_replies_.clear();
  for (exec_entry* e : written_without_replies_) {
    e->st = exec_entry::state::done;
    all.push_back(e);
  }
  written_without_replies_.clear();
  reading_ = reading::none;
  out_of_sync_ = false;
  multi_open_ = false;
  late_ = no_late;
}

}  // namespace redcoro::detail
