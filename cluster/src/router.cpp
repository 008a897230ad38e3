#include <redcoro/cluster/detail/router.hpp>
#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <algorithm>
#include <array>
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

// What the rules above make of a command, by its command_id(), worked out once from them: every
// name they test is known to proto::command_id, so a command it does not know (id 0) is none.
enum class by_name : unsigned char { plain, needs_plan, by_subcommand };

by_name by_name_of(std::uint8_t id) {
  static const auto kinds = [] {
    std::array<by_name, 256> k{};
    for (std::size_t i = 1; i < k.size(); ++i) {
      const proto::command_info* c = proto::command_by_id(static_cast<std::uint8_t>(i));
      if (!c) break;
      const std::vector<std::string_view> alone{c->name}, with_sub{c->name, "LOAD"};
      if (in_transaction(c->name) || refused(c->name) || fan_out_kind(alone))
        k[i] = by_name::needs_plan;
      else if (fan_out_kind(with_sub))
        k[i] = by_name::by_subcommand;  // SCRIPT, FUNCTION: it depends on the subcommand
    }
    return k;
  }();
  return kinds[id];
}

}  // namespace

void router::parse(std::string_view command) {
  argv_.clear();
  proto::request::for_each_arg(command, [&](std::string_view a) { argv_.push_back(a); });
}

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

std::optional<route> router::single(const proto::request& req) {
  if (req.commands() == 0) return std::nullopt;
  route r;
  for (std::size_t i = 0; i < req.commands(); ++i) {
    const proto::command_place& place = req.place(i);
    const by_name kind = by_name_of(place.id);
    if (kind == by_name::needs_plan) return std::nullopt;
    const info* entry = table_->find(place.id);
    int slot = any_slot;
    if (kind == by_name::plain && entry && entry->key_is_first_arg()) {
      if (place.first_arg != 0) slot = slot_of_key(req.first_arg(i));
    } else if (!(kind == by_name::plain && entry && entry->no_keys())) {
      // The server's key specifications, read from the arguments. (A multi-key command whose
      // keys share a slot needs no split.)
      parse(req.command_bytes(i));
      if (argv_.empty() || fan_out_kind(argv_)) return std::nullopt;
      entry = table_->find(argv_);
      slot = slot_of(argv_, entry);
      if (slot == cross_slot) return std::nullopt;
    }
    if (slot != any_slot) {
      if (r.slot != any_slot && r.slot != slot) return std::nullopt;
      r.slot = slot;
    }
    r.readonly = r.readonly && entry && entry->readonly();
  }
  return r;
}

plan router::make_plan(const proto::request& req) {
  const std::size_t count = req.commands();
  plan p;
  p.commands.resize(count);
  // Whether one of them opens a transaction, or is not a command at all.
  bool whole = false;
  for (std::size_t i = 0; i < count; ++i) {
    const proto::command_place& place = req.place(i);
    const proto::command_info* c = proto::command_by_id(place.id);
    whole = whole || place.size == 0 || (c && opens_transaction(c->name));
  }
  const std::string_view payload = req.payload();

  if (whole) {
    // One node runs all of it: every key must live in one slot.
    int slot = any_slot;
    bool readonly_all = true;
    for (std::size_t i = 0; i < count; ++i) {
      parse(req.command_bytes(i));
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
    const std::string_view command = req.command_bytes(i);
    parse(command);
    if (argv_.empty()) continue;
    if (refused(argv_[0])) {
      p.commands[i].error = std::string(scan_error);
      continue;
    }
    if (auto how = fan_out_kind(argv_)) {
      part f;
      f.req.append_serialized(command, 1);
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
      one.req.append_serialized(command, 1);
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
