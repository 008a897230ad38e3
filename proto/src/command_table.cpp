#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/error.hpp>

#include <algorithm>
#include <charconv>

namespace redcoro::proto {

namespace {
// Command names are ASCII; no locale is consulted.
char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
}  // namespace

std::size_t command_name_hash::operator()(std::string_view s) const noexcept {
  std::size_t h = 14695981039346656037ull;  // FNV-1a over the lower-case bytes
  for (char c : s)
    h = (h ^ static_cast<unsigned char>(ascii_lower(c))) * 1099511628211ull;
  return h;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

namespace {

int int_of(const proto::value* v, int fallback = 0) {
  if (!v) return fallback;
  auto n = v->to_integer();
  return n ? static_cast<int>(*n) : fallback;
}

std::string_view text_of(const proto::value* v) {
  return v ? std::string_view(v->text) : std::string_view();
}

}  // namespace

command_table::info command_table::parse_info(const proto::value& entry) {
  info out;
  // [name, arity, flags, first, last, step, acl categories, tips, key specs, subcommands]
  for (const proto::value& flag : entry[2].elements)
    if (flag.text == "readonly") out.readonly_ = true;
  if (entry.size() <= 8) {
    // Servers before 7.0 have no key specifications, only first, last and step: one range
    // (last negative counts from the end). Commands whose keys move about (`movablekeys`,
    // such as EVAL) cannot be described so; their keys are not found.
    const int first = int_of(&entry[3]);
    const int last = int_of(&entry[4]);
    if (first > 0) {
      info::spec s;
      s.begin_kind = info::spec::begin::index;
      s.index = first;
      s.find_kind = info::spec::find::range;
      s.last_key = last < 0 ? last : last - first;
      s.key_step = std::max(1, int_of(&entry[5], 1));
      out.specs_.push_back(std::move(s));
    }
  } else {
    for (const proto::value& k : entry[8].elements) {
      info::spec s;
      if (const proto::value* flags = k.find("flags"))
        for (const proto::value& f : flags->elements)
          if (iequals(f.text, "not_key")) s.not_key = true;
      if (const proto::value* b = k.find("begin_search")) {
        const std::string_view type = text_of(b->find("type"));
        const proto::value* sp = b->find("spec");
        if (type == "index" && sp) {
          s.begin_kind = info::spec::begin::index;
          s.index = int_of(sp->find("index"));
        } else if (type == "keyword" && sp) {
          s.begin_kind = info::spec::begin::keyword;
          s.keyword = std::string(text_of(sp->find("keyword")));
          s.start_from = int_of(sp->find("startfrom"));
        }
      }
      if (const proto::value* f = k.find("find_keys")) {
        const std::string_view type = text_of(f->find("type"));
        const proto::value* sp = f->find("spec");
        if (type == "range" && sp) {
          s.find_kind = info::spec::find::range;
          s.last_key = int_of(sp->find("lastkey"));
          s.key_step = std::max(1, int_of(sp->find("keystep"), 1));
          s.limit = int_of(sp->find("limit"));
        } else if (type == "keynum" && sp) {
          s.find_kind = info::spec::find::keynum;
          s.keynum_index = int_of(sp->find("keynumidx"));
          s.first_key = int_of(sp->find("firstkey"));
          s.key_step = std::max(1, int_of(sp->find("keystep"), 1));
        }
      }
      out.specs_.push_back(std::move(s));
    }
  }
  const bool movable = std::any_of(entry[2].elements.begin(), entry[2].elements.end(),
                                   [](const proto::value& f) { return f.text == "movablekeys"; });
  if (out.specs_.size() == 1) {
    const info::spec& s = out.specs_[0];
    out.key_is_first_arg_ = !movable && !s.not_key && s.begin_kind == info::spec::begin::index &&
                            s.index == 1 && s.find_kind == info::spec::find::range &&
                            s.last_key == 0;
  }
  out.no_keys_ = !movable && out.specs_.empty();
  if (entry.size() > 9) {
    for (const proto::value& sub : entry[9].elements) {
      if (sub.size() < 6) continue;
      // Named "container|sub".
      const std::string_view name = sub[0].text;
      const auto bar = name.find('|');
      out.subcommands_.emplace(bar == std::string_view::npos ? name : name.substr(bar + 1),
                               parse_info(sub));
    }
  }
  if (!out.subcommands_.empty()) out.key_is_first_arg_ = out.no_keys_ = false;
  return out;
}

std::error_code command_table::load(const proto::value& reply) {
  if (!reply.is_aggregate()) return proto::error::type_mismatch;
  command_map<info> table;
  for (const proto::value& entry : reply.elements) {
    if (entry.size() < 6 || entry[0].is_aggregate()) return proto::error::type_mismatch;
    table.emplace(entry[0].text, parse_info(entry));
  }
  if (table.empty()) return proto::error::type_mismatch;
  table_ = std::move(table);
  index_ids();
  return {};
}

void command_table::index_ids() noexcept {
  by_id_.fill(nullptr);
  for (std::size_t id = 1; id < by_id_.size(); ++id) {
    const command_info* c = command_by_id(static_cast<std::uint8_t>(id));
    if (!c) break;
    const auto it = table_.find(c->name);
    if (it != table_.end()) by_id_[id] = &it->second;
  }
}

const command_table::info* command_table::find(std::span<const std::string_view> argv) const {
  if (argv.empty()) return nullptr;
  const auto it = table_.find(argv[0]);
  if (it == table_.end()) return nullptr;
  const info* out = &it->second;
  if (!out->subcommands_.empty() && argv.size() > 1) {
    const auto sub = out->subcommands_.find(argv[1]);
    if (sub != out->subcommands_.end()) out = &sub->second;
  }
  return out;
}

void command_table::keys(std::span<const std::string_view> argv,
                         std::vector<std::size_t>& out) const {
  out.clear();
  if (const info* i = find(argv)) i->keys(argv, out, false);
}

void command_table::info::keys(std::span<const std::string_view> argv,
                               std::vector<std::size_t>& out, bool not_keys) const {
  for (const spec& s : specs_)
    if (not_keys || !s.not_key) apply(s, argv, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

// The keys one key specification finds, as Redis itself finds them.
void command_table::info::apply(const spec& s, std::span<const std::string_view> argv,
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

}  // namespace redcoro::proto
