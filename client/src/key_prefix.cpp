#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/error.hpp>

#include <algorithm>

namespace redcoro::detail {

key_reply key_reply_of(std::string_view name) noexcept {
  // Short names first: the check runs for every command of a prefixed connection.
  if (name.size() < 4 || name.size() > 10) return key_reply::none;
  using proto::iequals;
  if (iequals(name, "scan")) return key_reply::scan;
  if (iequals(name, "keys")) return key_reply::array;
  if (iequals(name, "xread") || iequals(name, "xreadgroup")) return key_reply::streams;
  if (iequals(name, "blpop") || iequals(name, "brpop") || iequals(name, "bzpopmin") ||
      iequals(name, "bzpopmax") || iequals(name, "blmpop") || iequals(name, "bzmpop") ||
      iequals(name, "lmpop") || iequals(name, "zmpop"))
    return key_reply::first;
  return key_reply::none;
}

void key_prefixer::classify(std::span<const std::string_view> argv, std::vector<std::size_t>& keys,
                            std::vector<std::size_t>& patterns) const {
  keys.clear();
  patterns.clear();
  if (argv.empty()) return;
  if (proto::iequals(argv[0], "keys") && argv.size() > 1) patterns.push_back(1);
  if (proto::iequals(argv[0], "scan")) {
    for (std::size_t i = 2; i + 1 < argv.size(); ++i)
      if (proto::iequals(argv[i], "MATCH")) patterns.push_back(i + 1);
  }
  table_.keys(argv, keys);
}

void key_prefixer::append_pattern(std::string& arg, std::string_view pattern) const {
  for (char c : prefix_) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') arg += '\\';
    arg += c;
  }
  arg += pattern;
}

void key_prefixer::rewrite(std::string_view payload, std::string& out,
                           std::vector<key_reply_at>* replies) const {
  std::size_t pos = 0;
  for (std::uint32_t index = 0; pos < payload.size(); ++index) {
    const std::size_t at = pos;
    const std::string_view command = proto::request::next_command(payload, pos);
    if (command.empty()) {  // not ours to judge: send the rest as it is
      out.append(payload.substr(at));
      return;
    }
    rewrite_parsed(command, index, out, replies);
  }
}

void key_prefixer::rewrite(const proto::request& req, std::string& out,
                           std::vector<key_reply_at>* replies) const {
  const std::string_view payload = req.payload();
  for (std::size_t i = 0; i < req.commands(); ++i) {
    const proto::command_place& place = req.place(i);
    if (place.size == 0) {  // not ours to judge: send the rest as it is
      out.append(payload.substr(place.offset));
      return;
    }
    const std::string_view command = payload.substr(place.offset, place.size);
    // (An entry found by id is a command proto::command_by_id knows.)
    const proto::command_table::info* entry = table_.find(place.id);
    // The common case, from the request's record: no key, or one key that is the first
    // argument, and a reply that names no key.
    if (!entry || key_reply_of(proto::command_by_id(place.id)->name) != key_reply::none) {
      rewrite_parsed(command, static_cast<std::uint32_t>(i), out, replies);
    } else if (entry->key_is_first_arg() && place.first_arg != 0) {
      const std::size_t header = place.first_arg - header_size(place.first_arg_size);
      out.append(payload.substr(place.offset, header - place.offset));
      append_bulk(out, prefix_, req.first_arg(i));
      const std::size_t after = place.first_arg + place.first_arg_size + 2;
      out.append(payload.substr(after, place.offset + place.size - after));
    } else if (entry->no_keys() || entry->key_is_first_arg()) {
      out.append(command);
    } else {
      rewrite_parsed(command, static_cast<std::uint32_t>(i), out, replies);
    }
  }
}

std::size_t key_prefixer::header_size(std::size_t n) noexcept {
  std::size_t digits = 1;
  for (; n >= 10; n /= 10)
    ++digits;
  return digits + 3;  // '$', the digits, CR LF
}

void key_prefixer::append_bulk(std::string& out, std::string_view head, std::string_view tail) {
  out += '$';
  out += std::to_string(head.size() + tail.size());
  out += "\r\n";
  out += head;
  out += tail;
  out += "\r\n";
}

void key_prefixer::rewrite_parsed(std::string_view command, std::uint32_t index, std::string& out,
                                  std::vector<key_reply_at>* replies) const {
  // Scratch space kept between calls: after warm-up, a request allocates nothing here.
  auto& argv = scratch_.argv;  // (references, not a structured binding: lambdas capture them)
  auto& keys = scratch_.keys;
  auto& patterns = scratch_.patterns;
  auto& pattern = scratch_.pattern;
  argv.clear();
  proto::request::for_each_arg(command, [&](std::string_view a) { argv.push_back(a); });
  if (replies && !argv.empty()) {
    if (const key_reply shape = key_reply_of(argv[0]); shape != key_reply::none)
      replies->push_back({index, shape});
  }
  classify(argv, keys, patterns);
  if (keys.empty() && patterns.empty()) {
    out.append(command);
    return;
  }
  // Serialized straight into `out`: keys get the prefix, patterns its escaped form.
  out += '*';
  out += std::to_string(argv.size());
  out += "\r\n";
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (std::binary_search(keys.begin(), keys.end(), i)) {
      append_bulk(out, prefix_, argv[i]);
    } else if (std::find(patterns.begin(), patterns.end(), i) != patterns.end()) {
      pattern.clear();
      append_pattern(pattern, argv[i]);
      append_bulk(out, pattern, {});
    } else {
      append_bulk(out, argv[i], {});
    }
  }
}

}  // namespace redcoro::detail
