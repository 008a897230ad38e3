#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/request.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

namespace redcoro::proto {
namespace {

// The size of "<prefix><n>\r\n". Space is asked of the buffer to the byte: asking for more
// than is written would move a request that fits inline to the heap.
constexpr std::size_t header_size(std::size_t n) noexcept {
  std::size_t size = 4;
  for (; n >= 10; n /= 10)
    ++size;
  return size;
}

// "<prefix><n>\r\n" at `at`, which has room for header_size(n) bytes; returns its end.
char* write_header(char* at, char prefix, std::size_t n, std::size_t size) noexcept {
  *at++ = prefix;
  if (n < 10) {
    *at++ = static_cast<char>('0' + n);
  } else {
    at = std::to_chars(at, at + (size - 3), n).ptr;
  }
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

void append_header(detail::small_buffer& out, char prefix, std::size_t n) {
  const std::size_t size = header_size(n);
  out.set_end(write_header(out.room(size), prefix, n, size));
}

// What command_id() tells of one serialized command: transaction control, a block time.
struct known {
  bool transaction = false;
  std::optional<std::chrono::milliseconds> block;
};

known known_of(std::uint8_t id, std::string_view command) noexcept {
  if (id == 0) return {};
  const command_info& info = *command_by_id(id);
  return {info.tx != tx_role::none,
          info.blocking == block_arg::none ? std::nullopt : proto::block_time(command)};
}

}  // namespace

namespace detail {

void small_buffer::grow(std::size_t need, const char* bytes, std::size_t n) {
  const std::size_t capacity = need > 2 * capacity_ ? need : 2 * capacity_;
  char* fresh = new char[capacity];
  std::memcpy(fresh, data_, size_);
  if (n != 0) std::memcpy(fresh + size_, bytes, n);
  if (data_ != inline_) delete[] data_;
  data_ = fresh;
  capacity_ = capacity;
  size_ += n;
}

}  // namespace detail

void arg_sink::add_bulk(std::string_view bytes) {
  if (out_ == nullptr) {
    ++count_;
    return;
  }
  const std::size_t header = header_size(bytes.size());
  const std::size_t need = header + bytes.size() + 2;
  if (out_->capacity() - out_->size() < need && out_->holds(bytes.data())) {
    // Bytes of this very buffer, which is about to move: copy them out first.
    const std::string copy(bytes);
    add_bulk(copy);
    return;
  }
  char* at = write_header(out_->room(need), '$', bytes.size(), header);
  if (count_++ == 0) {
    first_at_ = static_cast<std::size_t>(at - out_->data());
    first_size_ = bytes.size();
  }
  if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
  at += bytes.size();
  *at++ = '\r';
  *at++ = '\n';
  out_->set_end(at);
}

void arg_sink::add_signed(std::int64_t v) {
  std::array<char, 24> buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  add_bulk(std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())));
}

void arg_sink::add_unsigned(std::uint64_t v) {
  std::array<char, 24> buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  add_bulk(std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())));
}

void arg_sink::add_double(double v) {
  // Redis reads "inf", "-inf" (and "+inf"); to_chars writes those, and "nan" for NaN, which
  // the server then rejects with a clear error of its own.
  std::array<char, 32> buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  add_bulk(std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())));
}

command_place& request::new_place() {
  return commands_++ == 0 ? (first_place_ = command_place{}) : more_places_.emplace_back();
}

void request::open_command(std::uint8_t id, std::size_t args) {
  command_place& p = new_place();
  p.offset = payload_.size();
  p.id = id;
  append_header(payload_, '*', args);
}

void request::note_out_of_band(std::optional<pubsub_kind> kind, std::size_t args) {
  if (kind)
    out_of_band_.push_back(
        {static_cast<std::uint32_t>(commands_ - 1), *kind, static_cast<std::uint32_t>(args - 1)});
}

void request::begin_command(std::string_view command, std::size_t args) {
  open_command(proto::command_id(command), args);
  arg_sink(&payload_).add_bulk(command);
  note_out_of_band(pubsub_kind_of_command(command), args);
}

void request::begin_command(const command_name& command, std::size_t args) {
  open_command(command.id(), args);
  const std::string_view bulk = command.bulk();
  // The fixed-size copy only where the buffer has room for it already: asking room() for
  // bytes the name does not need would move a request that fits inline to the heap.
  if (payload_.capacity() - payload_.size() >= command_name::bulk_capacity) {
    char* at = payload_.room(command_name::bulk_capacity);
    std::memcpy(at, bulk.data(), command_name::bulk_capacity);
    payload_.set_end(at + bulk.size());
  } else {
    payload_.append(bulk);
  }
  note_out_of_band(command.out_of_band(), args);
}

void request::end_command(const arg_sink& args) noexcept {
  command_place& p = commands_ == 1 ? first_place_ : more_places_.back();
  p.size = payload_.size() - p.offset;
  p.first_arg = args.first_at_;
  p.first_arg_size = args.first_size_;
  const known k = known_of(p.id, payload_.view().substr(p.offset, p.size));
  transaction_ |= k.transaction;
  if (k.block) merge_block(k.block->count());
}

void request::append(const request& other) {
  if (&other == this) {
    const request copy = other;
    append(copy);
    return;
  }
  const std::size_t shift = payload_.size();
  for (out_of_band_command c : other.out_of_band_) {
    c.index += static_cast<std::uint32_t>(commands_);
    out_of_band_.push_back(c);
  }
  payload_.append(other.payload_.view());
  for (std::size_t i = 0; i < other.commands_; ++i) {
    command_place& p = new_place();
    p = other.place(i);
    p.offset += shift;
    if (p.first_arg != 0) p.first_arg += shift;
  }
  merge_block(other.block_ms_);
  transaction_ |= other.transaction_;
}

void request::append_serialized(std::string_view commands, std::size_t count) {
  payload_.append(commands);
  // Each command's place, and what command_id() tells of it.
  std::size_t pos = payload_.size() - commands.size();
  for (std::size_t i = 0; i < count; ++i) {
    command_place& p = new_place();
    p.offset = pos;
    std::size_t arg = 0;
    std::string_view name;
    const auto one = next_command(payload_.view(), pos, [&](std::string_view a) {
      if (arg == 0) name = a;
      if (arg++ == 1) {
        p.first_arg = static_cast<std::size_t>(a.data() - payload_.data());
        p.first_arg_size = a.size();
      }
    });
    if (one.empty()) {  // not a command: the rest have no place to speak of
      p = command_place{payload_.size()};
      for (++i; i < count; ++i)
        new_place() = command_place{payload_.size()};
      break;
    }
    p.size = one.size();
    p.id = proto::command_id(name);
    const known k = known_of(p.id, one);
    transaction_ |= k.transaction;
    if (k.block) merge_block(k.block->count());
  }
}

bool request::read_header(std::string_view bytes, std::size_t& pos, char prefix,
                          std::size_t& n) noexcept {
  if (pos >= bytes.size() || bytes[pos] != prefix) return false;
  const char* first = bytes.data() + pos + 1;
  const char* last = bytes.data() + bytes.size();
  auto [p, ec] = std::from_chars(first, last, n);
  if (ec != std::errc{} || last - p < 2 || p[0] != '\r' || p[1] != '\n') return false;
  pos = static_cast<std::size_t>(p + 2 - bytes.data());
  return true;
}

std::string_view request::next_command(std::string_view payload, std::size_t& pos) noexcept {
  return next_command(payload, pos, [](std::string_view) {});
}

void request::clear() noexcept {
  payload_.clear();
  commands_ = 0;
  out_of_band_.clear();
  more_places_.clear();
  block_ms_ = -1;
  transaction_ = false;
}

}  // namespace redcoro::proto
