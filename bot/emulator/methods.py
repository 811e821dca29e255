"""The Bot API methods the emulator answers, with Telegram's validation and error wording.

Each method takes the shared :class:`EmulatorState` and the call's :class:`Params` and returns
the ``result`` the Bot API would return, or raises :class:`ApiError`.  They run with the state
lock held, so a method's effects appear to the test thread all at once.  ``getUpdates`` is not
here: it waits (long polling), so the server implements it on top of
:meth:`EmulatorState.take_updates`.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from bot.emulator.errors import ApiError, JSONDict, bad_request
from bot.emulator.formatting import parse, utf16_len
from bot.emulator.media import image_size
from bot.emulator.params import Params
from bot.emulator.records import ChatMessage, Edit
from bot.emulator.state import EmulatorState, StoredFile, scope_key

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_TEXT = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_BUTTON_ACTIONS = ("callback_data", "url", "web_app", "login_url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
                   "callback_game", "pay")
_NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly "
                 "the same as a current content and reply markup of the message")

Method = Callable[[EmulatorState, Params], Any]


def too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


# --- shared pieces ---------------------------------------------------------------------------

def _formatted(params: Params, text_field: str, entities_field: str, limit: int, *,
               required: bool, too_long: str) -> tuple[str | None, str | None, list[JSONDict]]:
    """(visible text, raw text, entities) for a text or caption parameter."""
    raw = params.string(text_field)
    if raw is None:
        if required:
            raise bad_request("message text is empty")
        return None, None, []
    explicit = params.json_value(entities_field, what="entities")
    if explicit is not None:
        if not isinstance(explicit, list):
            raise bad_request(f"can't parse {entities_field} JSON object")
        visible, entities = raw, explicit
    else:
        visible, entities = parse(raw, params.string("parse_mode"))
    if required and not visible.strip():
        raise bad_request("message text is empty")
    if utf16_len(visible) > limit:
        raise bad_request(too_long)
    return visible, raw, entities


def _reply_markup(params: Params, *, inline_only: bool = False) -> JSONDict | None:
    markup = params.json_value("reply_markup", what="reply keyboard markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard JSON object")
        for row in rows:
            for button in row:
                _check_inline_button(button)
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse keyboard JSON object")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_button(button: object) -> None:
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    if not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    actions = [key for key in _BUTTON_ACTIONS if key in button]
    if len(actions) != 1:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
            raise bad_request("BUTTON_URL_INVALID")


def _reply_to(state: EmulatorState, params: Params, chat_id: int) -> int | None:
    reply = params.json_value("reply_parameters", what="reply parameters")
    allow_missing = params.flag("allow_sending_without_reply")
    message_id: int | None
    if isinstance(reply, dict):
        raw_id = reply.get("message_id")
        message_id = int(raw_id) if isinstance(raw_id, int | str) and str(raw_id).lstrip("-").isdigit() else None
        allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
    else:
        message_id = params.integer("reply_to_message_id")
    if message_id is None:
        return None
    if state.find_message(chat_id, message_id) is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return message_id


def _input_file(state: EmulatorState, params: Params, name: str, *, kind: str, value: object = None) -> StoredFile:
    """The file a send method refers to: a multipart upload, an ``attach://`` part, or a file_id."""
    source = params.raw(name) if value is None else value
    upload = params.uploads.get(name) if value is None else None
    if isinstance(source, str) and source.startswith("attach://"):
        upload = params.uploads.get(source[len("attach://"):])
        if upload is None:
            raise bad_request(f"file {source} not found in the request")
    if upload is not None:
        return _store_upload(state, upload.content, kind=kind, file_name=upload.filename,
                             mime_type=upload.content_type)
    if source is None or source == "":
        raise bad_request(f"there is no {kind} in the request")
    if not isinstance(source, str):
        raise bad_request("wrong file identifier/HTTP URL specified")
    if re.match(r"^https?://", source):
        raise bad_request("failed to get HTTP URL content")
    stored = state.find_file(source)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
    return stored


def _store_upload(state: EmulatorState, content: bytes, *, kind: str, file_name: str | None,
                  mime_type: str | None) -> StoredFile:
    if not content:
        raise bad_request("file must be non-empty")
    if kind == "photo":
        if len(content) > MAX_PHOTO_BYTES:
            raise too_large()
        size = image_size(content)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000 or min(width, height) == 0 or max(width, height) / min(width, height) > 20:
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return state.store_file(content, kind="photo", file_name=None, mime_type=None, width=width, height=height)
    if len(content) > MAX_UPLOAD_BYTES:
        raise too_large()
    return state.store_file(content, kind="document", file_name=file_name, mime_type=mime_type)


def _bot_message(state: EmulatorState, chat_id: int, method: str, params: Params, **fields: Any) -> ChatMessage:
    message = ChatMessage(
        chat_id=chat_id, message_id=state.next_message_id(chat_id), from_bot=True,
        sender_id=int(state.bot_user["id"]), date=int(time.time()), at=time.monotonic(), method=method,
        parse_mode=params.string("parse_mode"), **fields,
    )
    state.add_message(message)
    state.record_output("message", method, chat_id, message.message_id, _content(message))
    return message


def _editable(state: EmulatorState, params: Params, *, verb: str = "edit") -> ChatMessage:
    if params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    chat_id = params.chat_id()
    state.chat_for_send(chat_id)
    message_id = params.integer("message_id", required=True)
    assert message_id is not None
    message = state.find_message(chat_id, message_id)
    if message is None:
        raise bad_request(f"message to {verb} not found")
    if verb == "edit" and not message.from_bot:
        raise bad_request("message can't be edited")
    return message


def _apply_edit(state: EmulatorState, message: ChatMessage, method: str, **changes: Any) -> JSONDict:
    for key, value in changes.items():
        setattr(message, key, value)
    message.edit_date = int(time.time())
    message.edits.append(Edit(method=method, at=time.monotonic(), text=message.text, caption=message.caption,
                              reply_markup=message.reply_markup))
    state.record_output("edit", method, message.chat_id, message.message_id, _content(message))
    return state.message_json(message)


def _content(message: ChatMessage) -> JSONDict:
    """What the user sees of a message at this instant (outputs keep it; the message may change)."""
    return {"kind": message.kind, "text": message.text, "caption": message.caption,
            "reply_markup": copy.deepcopy(message.reply_markup)}


# --- methods -------------------------------------------------------------------------------

def get_me(state: EmulatorState, params: Params) -> JSONDict:
    return dict(state.bot_user)


def delete_webhook(state: EmulatorState, params: Params) -> bool:
    if params.flag("drop_pending_updates"):
        state.drop_pending()
    return True


def get_webhook_info(state: EmulatorState, params: Params) -> JSONDict:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": len(state.pending_updates())}


def send_message(state: EmulatorState, params: Params) -> JSONDict:
    chat_id = params.chat_id()
    state.chat_for_send(chat_id)
    text, raw, entities = _formatted(params, "text", "entities", MAX_TEXT, required=True,
                                     too_long="message is too long")
    markup = _reply_markup(params)
    reply_to = _reply_to(state, params, chat_id)
    message = _bot_message(state, chat_id, "sendMessage", params, text=text, raw_text=raw, entities=entities,
                           reply_markup=markup, reply_to_message_id=reply_to)
    return state.message_json(message)


def _send_media(state: EmulatorState, params: Params, kind: str, method: str) -> JSONDict:
    chat_id = params.chat_id()
    state.chat_for_send(chat_id)
    caption, raw, entities = _formatted(params, "caption", "caption_entities", MAX_CAPTION, required=False,
                                        too_long="message caption is too long")
    markup = _reply_markup(params)
    reply_to = _reply_to(state, params, chat_id)
    stored = _input_file(state, params, kind, kind=kind)
    media: dict[str, Any] = (
        {"photo": stored.content} if kind == "photo"
        else {"document": stored.content, "document_name": stored.file_name, "mime_type": stored.mime_type}
    )
    message = _bot_message(state, chat_id, method, params, caption=caption, raw_text=raw,
                           caption_entities=entities, file_id=stored.file_id, reply_markup=markup,
                           reply_to_message_id=reply_to, **media)
    return state.message_json(message)


def send_photo(state: EmulatorState, params: Params) -> JSONDict:
    return _send_media(state, params, "photo", "sendPhoto")


def send_document(state: EmulatorState, params: Params) -> JSONDict:
    return _send_media(state, params, "document", "sendDocument")


def send_media_group(state: EmulatorState, params: Params) -> list[JSONDict]:
    chat_id = params.chat_id()
    state.chat_for_send(chat_id)
    media = params.json_value("media", what="media")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("media group must contain from 2 to 10 items")
    kinds = {item.get("type") if isinstance(item, dict) else None for item in media}
    if not kinds <= {"photo", "document"}:
        raise bad_request("only photo and document media groups are emulated")
    if len(kinds) > 1:
        raise bad_request("document can't be mixed with other media types")
    reply_to = _reply_to(state, params, chat_id)
    prepared = []
    for item in media:
        item_params = Params({k: v for k, v in item.items() if k in ("caption", "parse_mode", "caption_entities")})
        caption, raw, entities = _formatted(item_params, "caption", "caption_entities", MAX_CAPTION,
                                            required=False, too_long="message caption is too long")
        stored = _input_file(state, params, "media", kind=item["type"], value=item.get("media"))
        prepared.append((item["type"], stored, caption, raw, entities, item_params))
    group_id = uuid.uuid4().hex[:16]
    results = []
    for kind, stored, caption, raw, entities, item_params in prepared:
        media_fields: dict[str, Any] = (
            {"photo": stored.content} if kind == "photo"
            else {"document": stored.content, "document_name": stored.file_name, "mime_type": stored.mime_type}
        )
        message = _bot_message(state, chat_id, "sendMediaGroup", item_params, caption=caption, raw_text=raw,
                               caption_entities=entities, file_id=stored.file_id, media_group_id=group_id,
                               reply_to_message_id=reply_to, **media_fields)
        results.append(state.message_json(message))
    return results


def send_chat_action(state: EmulatorState, params: Params) -> bool:
    chat_id = params.chat_id()
    state.chat_for_send(chat_id)
    action = params.string("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    state.record_output("chat_action", "sendChatAction", chat_id, None, {"action": action})
    return True


def answer_callback_query(state: EmulatorState, params: Params) -> bool:
    query_id = params.string("callback_query_id", required=True)
    assert query_id is not None
    text = params.string("text")
    if text is not None and len(text) > MAX_CALLBACK_TEXT:
        raise bad_request("MESSAGE_TOO_LONG")
    answer = {"text": text, "show_alert": params.flag("show_alert"), "url": params.string("url"),
              "cache_time": params.integer("cache_time", 0)}
    query = state.answer_callback(query_id, answer)
    state.record_output("callback_answer", "answerCallbackQuery", query.chat_id, query.message_id,
                        {"callback_query_id": query_id, **answer})
    return True


def edit_message_text(state: EmulatorState, params: Params) -> JSONDict:
    message = _editable(state, params)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    text, raw, entities = _formatted(params, "text", "entities", MAX_TEXT, required=True,
                                     too_long="message is too long")
    markup = _reply_markup(params, inline_only=True)  # omitting it removes the keyboard, as on Telegram
    if text == message.text and entities == message.entities and markup == message.reply_markup:
        raise bad_request(_NOT_MODIFIED)
    return _apply_edit(state, message, "editMessageText", text=text, raw_text=raw, entities=entities,
                       reply_markup=markup, parse_mode=params.string("parse_mode"))


def edit_message_caption(state: EmulatorState, params: Params) -> JSONDict:
    message = _editable(state, params)
    if message.file_id is None:
        raise bad_request("there is no caption in the message to edit")
    caption, raw, entities = _formatted(params, "caption", "caption_entities", MAX_CAPTION, required=False,
                                        too_long="message caption is too long")
    markup = _reply_markup(params, inline_only=True)
    if caption == message.caption and entities == message.caption_entities and markup == message.reply_markup:
        raise bad_request(_NOT_MODIFIED)
    return _apply_edit(state, message, "editMessageCaption", caption=caption, raw_text=raw,
                       caption_entities=entities, reply_markup=markup)


def edit_message_reply_markup(state: EmulatorState, params: Params) -> JSONDict:
    message = _editable(state, params)
    markup = _reply_markup(params, inline_only=True)
    if markup == message.reply_markup:
        raise bad_request(_NOT_MODIFIED)
    return _apply_edit(state, message, "editMessageReplyMarkup", reply_markup=markup)


def delete_message(state: EmulatorState, params: Params) -> bool:
    message = _editable(state, params, verb="delete")
    message.deleted = True
    state.record_output("delete", "deleteMessage", message.chat_id, message.message_id)
    return True


def set_my_commands(state: EmulatorState, params: Params) -> bool:
    commands = params.json_value("commands", what="commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    clean: list[JSONDict] = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name, description = command.get("command"), command.get("description")
        if not isinstance(name, str) or not _COMMAND.match(name.lower()):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": name.lower(), "description": description})
    key = _command_scope(state, params)
    state.commands[key] = clean
    state.notify()
    return True


def _command_scope(state: EmulatorState, params: Params) -> str:
    """The key of the call's BotCommandScope; a chat scope needs a chat the bot knows (else 400)."""
    scope = params.json_value("scope", what="BotCommandScope")
    key = scope_key(scope, params.string("language_code"))
    if isinstance(scope, dict) and "chat_id" in scope:
        chat_id = json.loads(key.rsplit("|", 1)[0]).get("chat_id")
        if chat_id not in state.chats:
            raise bad_request("chat not found")
    return key


def get_my_commands(state: EmulatorState, params: Params) -> list[JSONDict]:
    key = _command_scope(state, params)
    return [dict(c) for c in state.commands.get(key, [])]


def delete_my_commands(state: EmulatorState, params: Params) -> bool:
    key = _command_scope(state, params)
    state.commands.pop(key, None)
    state.notify()
    return True


def get_file(state: EmulatorState, params: Params) -> JSONDict:
    file_id = params.string("file_id", required=True)
    stored = state.find_file(file_id or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.content) > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content), "file_path": stored.file_path}


#: Bot API method name (canonical spelling) → implementation.  getUpdates lives in the server.
METHODS: dict[str, Method] = {
    "getMe": get_me,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "sendMessage": send_message,
    "sendPhoto": send_photo,
    "sendDocument": send_document,
    "sendMediaGroup": send_media_group,
    "sendChatAction": send_chat_action,
    "answerCallbackQuery": answer_callback_query,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "getFile": get_file,
}
