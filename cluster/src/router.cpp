#include <redcoro/cluster/detail/router.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <algorithm>
#include <utility>

namespace redcoro::detail {

namespace {

// Commands that must stay with the commands around them on one connection.
bool opens_transaction(std::string_view name) {
  return proto::iequals(name, "MULTI") || proto::iequals(name, "WATCH");
}

bool in_transaction(std::string_view name) {
  return opens_transaction(name) || proto::iequals(name, "EXEC") ||
         proto::iequals(name, "DISCARD") || proto::iequals(name, "UNWATCH");
}

// Multi-key commands split by slot, and how their parts' replies merge.
std::optional<merge> split_kind(std::string_view name) {
  if (proto::iequals(name, "MGET")) return merge::by_key;
  if (proto::iequals(name, "MSET")) return merge::first;
  if (proto::iequals(name, "DEL") || proto::iequals(name, "UNLINK") ||
      proto::iequals(name, "EXISTS") || proto::iequals(name, "TOUCH"))
    return merge::sum;
  return std::nullopt;
}

// Commands users expect to act on the whole cluster: sent to every primary.
std::optional<merge> fan_out_kind(const std::vector<std::string_view>& argv) {
  const std::string_view name = argv[0];
  if (proto::iequals(name, "DBSIZE")) return merge::sum;
  if (proto::iequals(name, "KEYS")) return merge::concat;
  if (proto::iequals(name, "FLUSHALL") || proto::iequals(name, "FLUSHDB")) return merge::first;
  if (argv.size() > 1 && (proto::iequals(name, "SCRIPT") || proto::iequals(name, "FUNCTION"))) {
    const std::string_view sub = argv[1];
    if (proto::iequals(sub, "LOAD") || proto::iequals(sub, "FLUSH") ||
        (proto::iequals(name, "FUNCTION") &&
         (proto::iequals(sub, "DELETE") || proto::iequals(sub, "RESTORE"))))
      return merge::first;
  }
  return std::nullopt;
}

constexpr int cross_slot = -2;

// Commands whose answer from one node would look like the whole cluster's but is not: SCAN's
// cursor is one node's. Refused with this error reply rather than answered partially.
bool refused(std::string_view name) {
  return proto::iequals(name, "SCAN");
}

}  // namespace

int router::slot_of_key(std::string_view key) {
  if (prefix_.empty()) return proto::key_slot(key);
  prefixed_.assign(prefix_);
  prefixed_.append(key);
  return proto::key_slot(prefixed_);
}

int router::slot_of(const std::vector<std::string_view>& argv, const info* entry) {
  keys_.clear();
  if (entry) entry->keys(argv, keys_);
  int slot = any_slot;
  for (std::size_t k : keys_) {
    const int s = slot_of_key(argv[k]);
    if (slot == any_slot)
      slot = s;
    else if (s != slot)
      return cross_slot;
  }
  return slot;
}

std::optional<route> router::single(std::string_view payload) {
  route r;
  bool empty = true;
  std::size_t pos = 0;
  while (pos < payload.size()) {
    argv_.clear();
    const std::string_view command =
        proto::request::next_command(payload, pos, [&](std::string_view a) { argv_.push_back(a); });
    if (command.empty() || argv_.empty()) return std::nullopt;
    // (A multi-key command whose keys share a slot needs no split.)
    if (in_transaction(argv_[0]) || fan_out_kind(argv_) || refused(argv_[0])) return std::nullopt;
    const info* entry = table_->find(argv_);
    const int slot = slot_of(argv_, entry);
    if (slot == cross_slot) return std::nullopt;
    if (slot != any_slot) {
      if (r.slot != any_slot && r.slot != slot) return std::nullopt;
      r.slot = slot;
    }
    r.readonly = r.readonly && entry && entry->readonly();
    empty = false;
  }
  if (empty) return std::nullopt;
  return r;
}

plan router::make_plan(std::string_view payload, std::size_t count) {
  plan p;
  p.commands.resize(count);
  // The commands, and whether one of them opens a transaction (its name is its first
  // argument).
  std::vector<std::string_view> commands;
  bool whole = false;
  std::size_t pos = 0;
  while (pos < payload.size() && commands.size() < count) {
    bool name = true;
    const std::string_view c = proto::request::next_command(payload, pos, [&](std::string_view a) {
      if (name && opens_transaction(a)) whole = true;
      name = false;
    });
    if (c.empty()) break;
    commands.push_back(c);
  }
  auto parse = [&](std::string_view bytes) {
    argv_.clear();
    proto::request::for_each_arg(bytes, [&](std::string_view a) { argv_.push_back(a); });
  };

  if (whole || commands.size() != count) {
    // One node runs all of it: every key must live in one slot.
    int slot = any_slot;
    bool readonly_all = true;
    for (std::string_view c : commands) {
      parse(c);
      if (argv_.empty()) continue;
      const info* entry = table_->find(argv_);
      const int s = slot_of(argv_, entry);
      readonly_all = readonly_all && entry && entry->readonly();
      if (s == any_slot) continue;
      if (s == cross_slot || (slot != any_slot && s != slot)) {
        for (command_plan& cp : p.commands)
          cp.error = std::string(crossslot_error) + " (a transaction runs on one node)";
        return p;
      }
      slot = s;
    }
    part whole_part;
    whole_part.req.append_serialized(payload, count);
    whole_part.slot = slot;
    whole_part.readonly = readonly_all;
    p.parts.push_back(std::move(whole_part));
    return p;
  }

  std::vector<std::string_view> args;
  for (std::size_t i = 0; i < count; ++i) {
    parse(commands[i]);
    if (argv_.empty()) continue;
    if (refused(argv_[0])) {
      p.commands[i].error = std::string(scan_error);
      continue;
    }
    if (auto how = fan_out_kind(argv_)) {
      part f;
      f.req.append_serialized(commands[i], 1);
      f.first = i;
      f.every_primary = true;
      p.parts.push_back(std::move(f));
      p.commands[i].how = *how;
      continue;
    }
    const info* entry = table_->find(argv_);
    const bool readonly = entry && entry->readonly();
    const int slot = slot_of(argv_, entry);
    if (slot != cross_slot) {
      part one;
      one.req.append_serialized(commands[i], 1);
      one.first = i;
      one.slot = slot;
      one.readonly = readonly;
      p.parts.push_back(std::move(one));
      continue;
    }
    const auto how = split_kind(argv_[0]);
    if (!how) {
      p.commands[i].error = std::string(crossslot_error);
      continue;
    }
    // One part per slot, in the order the slots first appear; each key takes the arguments
    // up to the next key with it (MSET's value).
    p.commands[i].how = *how;
    p.commands[i].keys = keys_.size();
    const std::vector<std::size_t> keys = keys_;
    std::vector<int> slots(keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k)
      slots[k] = slot_of_key(argv_[keys[k]]);
    std::vector<bool> taken(keys.size(), false);
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (taken[k]) continue;
      part s;
      s.first = i;
      s.slot = slots[k];
      s.readonly = readonly;
      args.clear();
      for (std::size_t j = k; j < keys.size(); ++j) {
        if (taken[j] || slots[j] != slots[k]) continue;
        taken[j] = true;
        s.keys.push_back(j);
        const std::size_t end = j + 1 < keys.size() ? keys[j + 1] : argv_.size();
        for (std::size_t a = keys[j]; a < end; ++a)
          args.push_back(argv_[a]);
      }
      s.req.push_range(argv_[0], args);
      p.parts.push_back(std::move(s));
    }
  }
  return p;
}

}  // namespace redcoro::detail
