#include <redcoro/client/detail/handshake.hpp>
#include <redcoro/client/error.hpp>

#include <string_view>

namespace redcoro::detail {
namespace {

bool starts_with_word(std::string_view message, std::string_view word) {
  return message.substr(0, word.size()) == word;
}

bool is_auth_error(std::string_view message) {
  return starts_with_word(message, "WRONGPASS") || starts_with_word(message, "NOAUTH") ||
         starts_with_word(message, "NOPERM") ||
         message.find("invalid password") != std::string_view::npos ||
         message.find("invalid username-password") != std::string_view::npos;
}

bool rejects_hello(std::string_view message) {
  return starts_with_word(message, "NOPROTO") ||
         message.find("unknown command") != std::string_view::npos;
}

}  // namespace

std::string_view handshake_machine::user() const noexcept {
  return settings_->username.empty() ? std::string_view("default")
                                     : std::string_view(settings_->username);
}

void handshake_machine::start(const handshake_settings& s, proto::request& out) {
  settings_ = &s;
  client_id_ = -1;
  tracking_ = false;
  command_.reset();
  if (s.protocol >= 3)
    hello(out);
  else
    resp2(out);
}

void handshake_machine::hello(proto::request& out) {
  const handshake_settings& s = *settings_;
  out.clear();
  command_at_ = role_at_ = id_at_ = extras_at_ = tracking_at_ = none;
  if (!s.password.empty() && !s.client_name.empty())
    out.push("HELLO", 3, "AUTH", user(), s.password, "SETNAME", s.client_name);
  else if (!s.password.empty())
    out.push("HELLO", 3, "AUTH", user(), s.password);
  else if (!s.client_name.empty())
    out.push("HELLO", 3, "SETNAME", s.client_name);
  else
    out.push("HELLO", 3);
  if (s.database != 0) out.push("SELECT", s.database);
  stage_ = stage::hello;
}

void handshake_machine::resp2(proto::request& out) {
  const handshake_settings& s = *settings_;
  out.clear();
  command_at_ = role_at_ = id_at_ = extras_at_ = tracking_at_ = none;
  if (!s.password.empty()) {
    if (s.username.empty())
      out.push("AUTH", s.password);
    else
      out.push("AUTH", s.username, s.password);
  }
  if (!s.client_name.empty()) out.push("CLIENT", "SETNAME", s.client_name);
  id_at_ = out.expected_replies();
  out.push("CLIENT", "ID");
  append_rest(out, true);
  // PING makes the handshake non-empty, and proves the server answers.
  out.push("PING");
  stage_ = stage::resp2;
}

void handshake_machine::append_rest(proto::request& out, bool select) {
  const handshake_settings& s = *settings_;
  if (select && s.database != 0) out.push("SELECT", s.database);
  if (s.fetch_command_table) {
    command_at_ = out.expected_replies();
    out.push("COMMAND");
  }
  if (!s.expect_role.empty()) {
    role_at_ = out.expected_replies();
    out.push("ROLE");
  }
  if (s.tracking && !select) {  // RESP3 (`select` is the RESP2 handshake)
    tracking_at_ = out.expected_replies();
    out.push("CLIENT", "TRACKING", "ON", *s.tracking);
  }
  // On RESP2 the confirmations of the caller's SUBSCRIBEs are arrays, which the multiplexer
  // routes to the push sink.
  extras_at_ = out.expected_replies();
  if (s.extras && *s.extras) (*s.extras)(out);
}

handshake_machine::outcome handshake_machine::on_replies(proto::generic_response& replies,
                                                         proto::request& out) {
  outcome o;
  if (stage_ == stage::hello && !replies.empty() && !replies[0].has_error()) {
    // HELLO's map says which client this connection is: CLIENT UNBLOCK needs it.
    if (const proto::value* id = replies[0].value().find("id"))
      client_id_ = id->to_integer().value_or(-1);
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (i == id_at_) {
      if (!replies[i].has_error()) client_id_ = replies[i].value().to_integer().value_or(-1);
      continue;  // a server without CLIENT ID serves all the same
    }
    if (i == tracking_at_) {
      tracking_ = !replies[i].has_error();
      if (!tracking_) {
        // The session serves; the client-side cache stays off until a session accepts it.
        if (!o.note.empty()) o.note += "; ";
        o.note += "CLIENT TRACKING was refused (" + replies[i].error().message +
                  "): the client-side cache serves nothing locally";
        o.warning = true;
      }
      continue;
    }
    if (!replies[i].has_error()) continue;
    const std::string& message = replies[i].error().message;
    if (extras_at_ != none && i >= extras_at_) {
      // A command of the caller's refused (a re-subscription to a shard channel whose slot
      // moved, say): its owner's business, not a reason to drop the connection.
      if (!o.note.empty()) o.note += "; ";
      o.note += "a handshake command was refused: " + message;
      o.warning = true;
      continue;
    }
    if (i == 0 && stage_ == stage::hello && rejects_hello(message)) {
      o.note = "the server rejects HELLO 3 (" + message + "); using RESP2";
      if (settings_->tracking) o.note += " (the client-side cache needs RESP3: it stays off)";
      resp2(out);
      return o;
    }
    o.what = step::failed;
    o.ec = is_auth_error(message) ? error::auth_failed : error::handshake_failed;
    o.reason = message;
    return o;
  }
  if (stage_ == stage::hello) {
    out.clear();
    append_rest(out, false);
    stage_ = stage::extras;
    if (out.commands() != 0) return o;  // send
  }
  if (command_at_ != none && command_at_ < replies.size())
    command_ = std::move(replies[command_at_]).value();
  if (role_at_ != none) {
    const proto::value* role = nullptr;
    if (role_at_ < replies.size() && replies[role_at_]->size() > 0) role = &(*replies[role_at_])[0];
    if (!role || role->text != settings_->expect_role) {
      o.what = step::failed;
      o.ec = error::wrong_role;
      o.reason = "ROLE says " + (role ? role->text : std::string("nothing")) + ", not " +
                 settings_->expect_role;
      return o;
    }
  }
  o.what = step::ready;
  return o;
}

}  // namespace redcoro::detail
