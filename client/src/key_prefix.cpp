#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/proto/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace redcoro::detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int int_of(const proto::value* v, int fallback = 0) {
  if (!v) return fallback;
  auto n = v->to_integer();
  return n ? static_cast<int>(*n) : fallback;
}

std::string_view text_of(const proto::value* v) {
  return v ? std::string_view(v->text) : std::string_view();
}

}  // namespace

key_prefixer::command_info key_prefixer::parse_info(const proto::value& entry) {
  command_info info;
  // [name, arity, flags, first, last, step, acl categories, tips, key specs, subcommands]
  if (entry.size() > 8) {
    for (const proto::value& k : entry[8].elements) {
      spec s;
      if (const proto::value* b = k.find("begin_search")) {
        const std::string_view type = text_of(b->find("type"));
        const proto::value* sp = b->find("spec");
        if (type == "index" && sp) {
          s.begin_kind = spec::begin::index;
          s.index = int_of(sp->find("index"));
        } else if (type == "keyword" && sp) {
          s.begin_kind = spec::begin::keyword;
          s.keyword = std::string(text_of(sp->find("keyword")));
          s.start_from = int_of(sp->find("startfrom"));
        }
      }
      if (const proto::value* f = k.find("find_keys")) {
        const std::string_view type = text_of(f->find("type"));
        const proto::value* sp = f->find("spec");
        if (type == "range" && sp) {
          s.find_kind = spec::find::range;
          s.last_key = int_of(sp->find("lastkey"));
          s.key_step = std::max(1, int_of(sp->find("keystep"), 1));
          s.limit = int_of(sp->find("limit"));
        } else if (type == "keynum" && sp) {
          s.find_kind = spec::find::keynum;
          s.keynum_index = int_of(sp->find("keynumidx"));
          s.first_key = int_of(sp->find("firstkey"));
          s.key_step = std::max(1, int_of(sp->find("keystep"), 1));
        }
      }
      info.specs.push_back(std::move(s));
    }
  }
  if (entry.size() > 9) {
    for (const proto::value& sub : entry[9].elements) {
      if (sub.size() == 0) continue;
      // Named "container|sub".
      const std::string name = lower(sub[0].text);
      const auto bar = name.find('|');
      info.subcommands.emplace(bar == std::string::npos ? name : name.substr(bar + 1),
                               parse_info(sub));
    }
  }
  return info;
}

std::error_code key_prefixer::load(const proto::value& reply) {
  if (!reply.is_aggregate()) return proto::error::type_mismatch;
  std::unordered_map<std::string, command_info> table;
  for (const proto::value& entry : reply.elements) {
    if (entry.size() < 6 || entry[0].is_aggregate()) return proto::error::type_mismatch;
    table.emplace(lower(entry[0].text), parse_info(entry));
  }
  if (table.empty()) return proto::error::type_mismatch;
  table_ = std::move(table);
  return {};
}

// The keys one key specification finds, as Redis itself finds them.
void key_prefixer::apply(const spec& s, std::span<const std::string_view> argv,
                         std::vector<std::size_t>& keys) {
  const int argc = static_cast<int>(argv.size());
  int first = 0;
  switch (s.begin_kind) {
    case spec::begin::index:
      first = s.index;
      break;
    case spec::begin::keyword: {
      first = -1;
      if (s.start_from >= 0) {
        for (int i = s.start_from; i < argc; ++i)
          if (iequals(argv[i], s.keyword)) {
            first = i + 1;
            break;
          }
      } else {
        for (int i = argc + s.start_from; i > 0; --i)
          if (iequals(argv[i], s.keyword)) {
            first = i + 1;
            break;
          }
      }
      if (first < 0) return;
      break;
    }
    case spec::begin::unknown:
      return;
  }
  if (first <= 0 || first >= argc) return;
  switch (s.find_kind) {
    case spec::find::range: {
      int last = 0;
      if (s.last_key >= 0)
        last = first + s.last_key;
      else if (s.limit <= 1)
        last = argc + s.last_key;
      else
        last = first + ((argc - first) / s.limit + s.last_key);
      for (int i = first; i <= last && i < argc; i += s.key_step)
        keys.push_back(static_cast<std::size_t>(i));
      break;
    }
    case spec::find::keynum: {
      const int at = first + s.keynum_index;
      if (at >= argc) return;
      int count = 0;
      auto [p, ec] = std::from_chars(argv[at].data(), argv[at].data() + argv[at].size(), count);
      if (ec != std::errc{} || count < 0) return;
      for (int i = first + s.first_key, n = 0; n < count && i < argc; i += s.key_step, ++n)
        keys.push_back(static_cast<std::size_t>(i));
      break;
    }
    case spec::find::unknown:
      break;
  }
}

void key_prefixer::classify(std::span<const std::string_view> argv, std::vector<std::size_t>& keys,
                            std::vector<std::size_t>& patterns) const {
  keys.clear();
  patterns.clear();
  if (argv.empty()) return;
  const std::string name = lower(argv[0]);
  if (name == "keys" && argv.size() > 1) patterns.push_back(1);
  if (name == "scan") {
    for (std::size_t i = 2; i + 1 < argv.size(); ++i)
      if (iequals(argv[i], "MATCH")) patterns.push_back(i + 1);
  }
  const auto it = table_.find(name);
  if (it == table_.end()) return;
  const command_info* info = &it->second;
  if (!info->subcommands.empty() && argv.size() > 1) {
    const auto sub = info->subcommands.find(lower(argv[1]));
    if (sub != info->subcommands.end()) info = &sub->second;
  }
  for (const spec& s : info->specs)
    apply(s, argv, keys);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}

void key_prefixer::append_pattern(std::string& arg, std::string_view pattern) const {
  for (char c : prefix_) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') arg += '\\';
    arg += c;
  }
  arg += pattern;
}

void key_prefixer::rewrite(std::string_view payload, std::string& out) const {
  std::vector<std::string_view> argv;
  std::vector<std::size_t> keys, patterns;
  std::string pattern;
  std::size_t pos = 0;
  while (pos < payload.size()) {
    const std::string_view command = proto::request::next_command(payload, pos);
    if (command.empty()) {  // not ours to judge: send the rest as it is
      out.append(payload.substr(pos));
      return;
    }
    argv.clear();
    proto::request::for_each_arg(command, [&](std::string_view a) { argv.push_back(a); });
    classify(argv, keys, patterns);
    if (keys.empty() && patterns.empty()) {
      out.append(command);
      continue;
    }
    // Serialized straight into `out`: keys get the prefix, patterns its escaped form.
    auto append_bulk = [&](std::string_view head, std::string_view tail) {
      out += '$';
      out += std::to_string(head.size() + tail.size());
      out += "\r\n";
      out += head;
      out += tail;
      out += "\r\n";
    };
    out += '*';
    out += std::to_string(argv.size());
    out += "\r\n";
    for (std::size_t i = 0; i < argv.size(); ++i) {
      if (std::binary_search(keys.begin(), keys.end(), i)) {
        append_bulk(prefix_, argv[i]);
      } else if (std::find(patterns.begin(), patterns.end(), i) != patterns.end()) {
        pattern.clear();
        append_pattern(pattern, argv[i]);
        append_bulk(pattern, {});
      } else {
        append_bulk(argv[i], {});
      }
    }
  }
}

}  // namespace redcoro::detail
