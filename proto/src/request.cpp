#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/request.hpp>

#include <array>
#include <charconv>
#include <cmath>

namespace redcoro::proto {
namespace {

// Appends "<prefix><n>\r\n".
void append_header(std::string& out, char prefix, std::size_t n) {
  std::array<char, 24> buf;
  buf[0] = prefix;
  auto r = std::to_chars(buf.data() + 1, buf.data() + buf.size() - 2, n);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  out.append(buf.data(), r.ptr);
}

}  // namespace

void arg_sink::add_bulk(std::string_view bytes) {
  ++count_;
  if (out_ == nullptr) return;
  append_header(*out_, '$', bytes.size());
  out_->append(bytes);
  out_->append("\r\n", 2);
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

void request::begin_command(std::string_view command, std::size_t args) {
  append_header(payload_, '*', args);
  arg_sink(&payload_).add_bulk(command);
  if (const auto kind = pubsub_kind_of_command(command))
    out_of_band_.push_back(
        {static_cast<std::uint32_t>(commands_), *kind, static_cast<std::uint32_t>(args - 1)});
  const std::uint8_t id = proto::command_id(command);
  ids_.push_back(static_cast<char>(id));
  if (id != 0) {
    const command_info& info = *command_by_id(id);
    pending_block_ = info.blocking != block_arg::none;
    transaction_ |= info.tx != tx_role::none;
  }
  ++commands_;
}

void request::end_blocking_command(std::size_t start) noexcept {
  pending_block_ = false;
  if (const auto t = proto::block_time(std::string_view(payload_).substr(start)))
    merge_block(t->count());
}

void request::append_serialized(std::string_view commands, std::size_t count) {
  const std::size_t start = payload_.size();
  payload_ += commands;
  commands_ += count;
  // The commands' names, for what command_id() tells of them.
  std::size_t pos = start;
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view name;
    const auto one = next_command(payload_, pos, [&](std::string_view arg) {
      if (name.empty()) name = arg;
    });
    if (one.empty()) {
      ids_.append(count - i, '\0');
      break;
    }
    const std::uint8_t id = proto::command_id(name);
    ids_.push_back(static_cast<char>(id));
    if (id == 0) continue;
    const command_info& info = *command_by_id(id);
    transaction_ |= info.tx != tx_role::none;
    if (info.blocking != block_arg::none) {
      if (const auto t = proto::block_time(one)) merge_block(t->count());
    }
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

std::string_view request::command_bytes(std::size_t index) const noexcept {
  std::size_t pos = 0;
  std::string_view command;
  for (std::size_t i = 0; i <= index; ++i) {
    command = next_command(payload_, pos);
    if (command.empty()) return {};
  }
  return command;
}

void request::clear() noexcept {
  payload_.clear();
  commands_ = 0;
  out_of_band_.clear();
  ids_.clear();
  block_ms_ = -1;
  pending_block_ = false;
  transaction_ = false;
}

}  // namespace redcoro::proto
