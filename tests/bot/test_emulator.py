"""The Telegram emulator, driven by a real python-telegram-bot 22 Application over real HTTP.

Bot-level tests run the bot on the test's own loop (``run_async`` + ``running``) with tiny
handlers defined here; protocol details (error shapes, encodings, long polling) are checked
with a plain HTTP client, as any Bot API client would see them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import httpx
import pytest
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.emulator import Emulator
from bot.emulator.methods import METHODS
from tests.bot.emulator_fixtures import build_app, run_async, running, tiny_png

USER = 7
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"),
                                  InlineKeyboardButton("No", callback_data="no")]])


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(f"echo: {update.message.text}")


def api(emu: Emulator, method: str, token: str | None = None) -> str:
    return f"{emu.bot_api_url}{token or emu.token}/{method}"


# --- a real bot over HTTP -------------------------------------------------------------------

def test_echo_bot_replies_and_round_trip_is_timestamped(emulator: Emulator) -> None:
    async def scenario() -> None:
        async with running(build_app(emulator, [MessageHandler(filters.TEXT, echo)])) as app:
            # given a polling bot, when a user writes to it
            update_id = emulator.inject_message(USER, "hello there", first_name="Ann")
            replies = await emulator.wait_for_replies_async(update_id)
            # then it learnt who it is from getMe, and its reply is recorded after the injection
            assert app.bot.username == emulator.bot_user["username"]
            assert [r.text for r in replies] == ["echo: hello there"]
            assert replies[0].from_bot
            assert replies[0].at >= emulator.injection(update_id).at
    run_async(scenario())
    transcript = emulator.messages(USER)
    assert [(m.from_bot, m.text) for m in transcript] == [(False, "hello there"), (True, "echo: hello there")]
    # what PTB 22 calls: getMe and deleteWebhook to start, long polls, a last poll (timeout 0) to confirm
    methods = [c.method for c in emulator.calls() if c.method != "getUpdates"]
    assert methods == ["getMe", "deleteWebhook", "sendMessage"]
    polls = [c for c in emulator.calls("getUpdates") if c.ok]
    assert polls[-1].params["timeout"] == "0" and polls[-1].params["offset"] == "2"  # update 1 confirmed
    assert all(c.ok for c in emulator.calls() if c.method != "getUpdates")


def test_commands_arrive_with_bot_command_entity_and_arguments(emulator: Emulator) -> None:
    async def predict(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"args={context.args}")

    async def scenario() -> None:
        async with running(build_app(emulator, [CommandHandler("predict", predict)])):
            first = emulator.inject_command(USER, "predict", "42 7590-VHVEG")
            second = emulator.inject_message(USER, f"/predict@{emulator.bot_user['username']} 1")
            await emulator.wait_for_replies_async(first)
            await emulator.wait_for_replies_async(second)
    run_async(scenario())
    assert [m.text for m in emulator.bot_messages(USER)] == ["args=['42', '7590-VHVEG']", "args=['1']"]


def test_send_photo_upload_keeps_bytes_size_and_parsed_caption(emulator: Emulator) -> None:
    png = tiny_png(5, 4)
    sent: list[Message] = []

    async def chart(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        sent.append(await update.message.reply_photo(png, caption="<b>Churn</b> by month",
                                                     parse_mode=ParseMode.HTML))

    async def scenario() -> None:
        async with running(build_app(emulator, [CommandHandler("chart", chart)])):
            await emulator.wait_for_replies_async(emulator.inject_command(USER, "chart"))
    run_async(scenario())
    message = emulator.bot_messages(USER)[0]
    assert message.kind == "photo" and message.photo == png
    assert message.caption == "Churn by month"
    assert message.caption_entities == [{"type": "bold", "offset": 0, "length": 5}]
    # PTB parsed the answer into a Message with a PhotoSize of the real dimensions
    assert (sent[0].photo[-1].width, sent[0].photo[-1].height) == (5, 4)
    assert emulator.file_content(sent[0].photo[-1].file_id) == png


def test_send_document_upload_and_resend_by_file_id(emulator: Emulator) -> None:
    csv = b"customer,score\nA,0.91\n"

    async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.effective_chat is not None
        first = await update.message.reply_document(InputFile(csv, filename="scores.csv"), caption="scores")
        assert first.document is not None and first.document.file_name == "scores.csv"
        await context.bot.send_document(update.effective_chat.id, first.document.file_id)

    async def scenario() -> None:
        async with running(build_app(emulator, [CommandHandler("export", export)])):
            await emulator.wait_for_replies_async(emulator.inject_command(USER, "export"), count=2)
    run_async(scenario())
    first, again = emulator.bot_messages(USER)
    assert (first.document, first.document_name, first.mime_type, first.caption) == (csv, "scores.csv", "text/csv",
                                                                                      "scores")
    assert again.document == csv and again.file_id == first.file_id


def test_inline_keyboard_press_is_answered_and_message_edited(emulator: Emulator) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("Retrain now?", reply_markup=KEYBOARD)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer(f"you said {query.data}")
        await query.edit_message_text(f"Answer: {query.data}")

    async def scenario() -> None:
        handlers = [CommandHandler("ask", ask), CallbackQueryHandler(pressed)]
        async with running(build_app(emulator, handlers)):
            [question] = await emulator.wait_for_replies_async(emulator.inject_command(USER, "ask"))
            assert [(b.number, b.text, b.callback_data) for b in question.buttons()] == [(1, "Yes", "yes"),
                                                                                       (2, "No", "no")]
            press = emulator.inject_callback(USER, question.message_id, "no")
            answer = await emulator.wait_for_answer_async(press)
            edited = await emulator.wait_for_edit_async(USER, question.message_id)
            assert answer.text == "you said no" and not answer.show_alert
            # editing the text without reply_markup removes the keyboard, as on Telegram
            assert edited.text == "Answer: no" and edited.reply_markup is None and edited.buttons() == []
            assert [e.text for e in edited.edits] == ["Answer: no"]
    run_async(scenario())
    kinds = [o.kind for o in emulator.outputs(USER)]
    assert kinds == ["message", "callback_answer", "edit"]
    assert emulator.outputs(USER)[0].data["text"] == "Retrain now?"


def test_bot_downloads_an_uploaded_document(emulator: Emulator) -> None:
    content = bytes(range(256)) * 40 + b"tail"

    async def measure(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.document is not None
        document = update.message.document
        data = await (await document.get_file()).download_as_bytearray()
        digest = hashlib.sha256(bytes(data)).hexdigest()[:12]
        await update.message.reply_text(f"{document.file_name}: {len(data)} bytes ({document.file_size}) {digest}")

    async def scenario() -> None:
        async with running(build_app(emulator, [MessageHandler(filters.Document.ALL, measure)])):
            update_id = emulator.inject_document(USER, "clients.csv", content, "text/csv", caption="new batch")
            await emulator.wait_for_replies_async(update_id)
    run_async(scenario())
    expected = f"clients.csv: {len(content)} bytes ({len(content)}) {hashlib.sha256(content).hexdigest()[:12]}"
    assert emulator.bot_messages(USER)[0].text == expected
    assert [c.status for c in emulator.calls("getFile")] == [200]
    assert [c.status for c in emulator.calls("downloadFile")] == [200]


def test_commands_per_scope_and_chat_actions(emulator: Emulator) -> None:
    emulator.add_user(USER)

    async def scenario() -> None:
        async with running(build_app(emulator)) as app:
            bot = app.bot
            assert await bot.set_my_commands([BotCommand("start", "what this bot does")])
            assert await bot.set_my_commands([BotCommand("predict", "score a client"), BotCommand("top", "riskiest")],
                                             scope=BotCommandScopeChat(USER))
            assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(USER))] == ["predict",
                                                                                                      "top"]
            with pytest.raises(BadRequest, match="Chat not found"):
                await bot.set_my_commands([BotCommand("x", "y")], scope=BotCommandScopeChat(999))
            assert await bot.set_my_commands([BotCommand("old", "gone soon")], scope=BotCommandScopeChat(USER),
                                             language_code="de")
            assert await bot.delete_my_commands(scope=BotCommandScopeChat(USER), language_code="de")
            assert await bot.send_chat_action(USER, ChatAction.UPLOAD_DOCUMENT)
            with pytest.raises(BadRequest, match="Wrong parameter action"):
                await bot.send_chat_action(USER, "dancing")
    run_async(scenario())
    assert emulator.commands() == [{"command": "start", "description": "what this bot does"}]
    assert [c["command"] for c in emulator.commands({"type": "chat", "chat_id": USER})] == ["predict", "top"]
    assert emulator.commands({"type": "chat", "chat_id": USER}, language_code="de") == []
    assert [o.data["action"] for o in emulator.outputs(USER) if o.kind == "chat_action"] == ["upload_document"]


RETRY_AFTER_IS_INT = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


@RETRY_AFTER_IS_INT
def test_429_is_waited_out_by_the_rate_limiter(emulator: Emulator) -> None:
    # given sendMessage will hit flood control once
    emulator.fail_next("sendMessage", status=429, retry_after=1)

    async def scenario() -> None:
        app = build_app(emulator, [MessageHandler(filters.TEXT, echo)], rate_limiter=AIORateLimiter(max_retries=2))
        async with running(app):
            await emulator.wait_for_replies_async(emulator.inject_message(USER, "hi"), timeout=10)
    run_async(scenario())
    # then PTB waited retry_after and sent again: one 429, one success, one message
    calls = emulator.calls("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert [m.text for m in emulator.bot_messages(USER)] == ["echo: hi"]


@RETRY_AFTER_IS_INT
def test_429_without_limiter_and_403_for_a_blocked_user_reach_the_handler(emulator: Emulator) -> None:
    seen: list[Exception] = []

    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        try:
            await update.message.reply_text("reply")
        except (RetryAfter, Forbidden) as error:
            seen.append(error)

    async def scenario() -> None:
        async with running(build_app(emulator, [MessageHandler(filters.TEXT, reply)])):
            emulator.fail_next("sendMessage", status=429, retry_after=3)
            first = emulator.inject_message(USER, "one")
            await emulator.wait_for_async(lambda: len(seen) == 1)
            emulator.block(USER)
            emulator.inject_message(USER, "two")
            await emulator.wait_for_async(lambda: len(seen) == 2)
            assert emulator.delivered(first)
    run_async(scenario())
    retry, forbidden = seen
    assert isinstance(retry, RetryAfter) and "Retry in 3 seconds" in str(retry)
    assert isinstance(forbidden, Forbidden) and forbidden.message == "Forbidden: bot was blocked by the user"
    assert emulator.bot_messages(USER) == []
    last = emulator.calls("sendMessage")[-1]
    assert (last.status, last.description) == (403, "Forbidden: bot was blocked by the user")


def test_server_errors_and_dropped_connections_are_network_errors(emulator: Emulator) -> None:
    emulator.add_user(USER)

    async def scenario() -> None:
        async with build_app(emulator) as app:
            emulator.fail_next("sendMessage", status=502)
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await app.bot.send_message(USER, "x")
            emulator.drop_next("sendMessage")
            with pytest.raises(NetworkError):
                await app.bot.send_message(USER, "x")
            # and the fault is used up: the next call goes through
            assert (await app.bot.send_message(USER, "x")).text == "x"
    run_async(scenario())
    assert [c.status for c in emulator.calls("sendMessage")] == [502, 0, 200]


def test_polling_recovers_from_a_failed_get_updates(emulator: Emulator) -> None:
    emulator.fail_next("getUpdates", status=500)

    async def scenario() -> None:
        async with running(build_app(emulator, [MessageHandler(filters.TEXT, echo)])):
            await emulator.wait_for_replies_async(emulator.inject_message(USER, "still there?"), timeout=10)
    run_async(scenario())
    assert emulator.calls("getUpdates")[0].status == 500


def test_a_token_the_emulator_does_not_know_is_refused_at_start_up(emulator: Emulator) -> None:
    stranger = ApplicationBuilder().token("42:SOMEONE-else").base_url(emulator.bot_api_url).build()

    async def scenario() -> None:
        with pytest.raises(InvalidToken):
            await stranger.initialize()
    run_async(scenario())
    assert emulator.calls("getMe")[-1].status == 401


BAD_SENDS: list[tuple[str, Any, str]] = [
    ("unclosed HTML tag", lambda b: b.send_message(USER, "<b>bold", parse_mode=ParseMode.HTML),
     "Can't find end tag corresponding to start tag \"b\""),
    ("bare < in HTML", lambda b: b.send_message(USER, "risk < 5%", parse_mode=ParseMode.HTML),
     "Unsupported start tag"),
    ("unescaped . in MarkdownV2", lambda b: b.send_message(USER, "recall 0.8", parse_mode=ParseMode.MARKDOWN_V2),
     "Character '.' is reserved"),
    ("text too long", lambda b: b.send_message(USER, "x" * 4097), "message is too long"),
    ("blank text", lambda b: b.send_message(USER, "   "), "message text is empty"),
    ("unknown chat", lambda b: b.send_message(12345, "hi"), "chat not found"),
    ("callback_data over 64 bytes", lambda b: b.send_message(
        USER, "k", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="x" * 65)]])),
     "BUTTON_DATA_INVALID"),
    ("photo that is not an image", lambda b: b.send_photo(USER, b"not a png at all"), "IMAGE_PROCESS_FAILED"),
    ("caption too long", lambda b: b.send_document(USER, InputFile(b"x", filename="a.txt"), caption="c" * 1025),
     "message caption is too long"),
    ("unknown file_id", lambda b: b.get_file("no-such-file"), "invalid file_id"),
    ("reply to a missing message", lambda b: b.send_message(USER, "hi", reply_to_message_id=999),
     "message to be replied not found"),
]


@pytest.mark.parametrize(("send", "expected"), [case[1:] for case in BAD_SENDS], ids=[case[0] for case in BAD_SENDS])
def test_bad_requests_fail_like_telegram(emulator: Emulator, send: Any, expected: str) -> None:
    emulator.add_user(USER)

    async def scenario() -> None:
        async with build_app(emulator) as app:
            with pytest.raises(BadRequest) as raised:
                await send(app.bot)
            # PTB drops the "Bad Request: " prefix and lower-cases the rest
            assert expected.lower() in raised.value.message.lower()
    run_async(scenario())
    assert emulator.bot_messages(USER) == []


def test_edits_media_groups_and_deletions(emulator: Emulator) -> None:
    emulator.add_user(USER)

    async def scenario() -> None:
        async with build_app(emulator) as app:
            bot = app.bot
            question = await bot.send_message(USER, "Pick", reply_markup=KEYBOARD)
            with pytest.raises(BadRequest, match="Message is not modified"):
                await bot.edit_message_text("Pick", USER, question.message_id, reply_markup=KEYBOARD)
            await bot.edit_message_reply_markup(USER, question.message_id, reply_markup=None)
            album = await bot.send_media_group(USER, [InputMediaPhoto(tiny_png(2, 2)),
                                                      InputMediaPhoto(tiny_png(4, 4), caption="second")])
            assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
            recaptioned = await bot.edit_message_caption(USER, album[1].message_id, caption="<i>final</i>",
                                                         parse_mode=ParseMode.HTML)
            assert recaptioned.caption == "final" and recaptioned.edit_date is not None
            with pytest.raises(BadRequest, match="There is no text in the message to edit"):
                await bot.edit_message_text("x", USER, album[1].message_id)
            assert await bot.delete_message(USER, album[0].message_id)
            with pytest.raises(BadRequest, match="Message to delete not found"):
                await bot.delete_message(USER, album[0].message_id)
    run_async(scenario())
    shown = emulator.messages(USER)
    assert [(m.kind, m.caption) for m in shown] == [("text", None), ("photo", "final")]
    assert [e.caption for e in shown[1].edits] == ["final"]
    assert shown[0].reply_markup is None and [e.method for e in shown[0].edits] == ["editMessageReplyMarkup"]
    assert [m.deleted for m in emulator.messages(USER, include_deleted=True)] == [False, True, False]


def test_sync_tests_can_run_the_bot_in_a_thread(emulator: Emulator, start_bot: Any) -> None:
    # given the fixture's background bot, a plain synchronous test can chat with it
    start_bot(handlers=[MessageHandler(filters.TEXT, echo)])
    update_id = emulator.inject_message(USER, "sync")
    assert [m.text for m in emulator.wait_for_replies(update_id)] == ["echo: sync"]


# --- the protocol as any HTTP client sees it --------------------------------------------------

def test_unknown_method_unknown_token_and_malformed_token_shapes(emulator: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        unknown = client.post(api(emulator, "sendTelepathy"))
        wrong_token = client.post(api(emulator, "getMe", token="42:not-this-bot"))
        malformed = client.post(api(emulator, "getMe", token="nonsense"))
        cased = client.get(api(emulator, "GETME"))
    assert (unknown.status_code, unknown.json()) == (404, {"ok": False, "error_code": 404,
                                                            "description": "Not Found: method not found"})
    assert (wrong_token.status_code, wrong_token.json()) == (401, {"ok": False, "error_code": 401,
                                                                    "description": "Unauthorized"})
    assert malformed.status_code == 404 and malformed.json()["ok"] is False
    assert cased.json()["result"]["is_bot"] is True


def test_get_updates_offset_confirms_and_negative_offset_keeps_the_tail(emulator: Emulator) -> None:
    ids = [emulator.inject_message(USER, f"m{i}") for i in range(4)]
    with httpx.Client(timeout=5) as client:
        def get_updates(**params: Any) -> list[int]:
            return [u["update_id"] for u in client.post(api(emulator, "getUpdates"), json=params).json()["result"]]

        assert get_updates() == ids  # nothing confirmed yet: everything, again and again
        assert get_updates(limit=2) == ids[:2]
        assert get_updates(offset=ids[1] + 1) == ids[2:]  # confirms the first two
        assert get_updates() == ids[2:]
        assert get_updates(offset=-1) == ids[3:]  # forgets all but the last
        assert get_updates(offset=ids[3] + 1) == []
        assert emulator.pending_updates() == []
        # deleteWebhook(drop_pending_updates) is how PTB drops what piled up while it was away
        emulator.inject_message(USER, "stale")
        assert client.post(api(emulator, "deleteWebhook"), data={"drop_pending_updates": "true"}).json()["result"]
        assert get_updates() == []


def test_long_poll_returns_as_soon_as_an_update_arrives(emulator: Emulator) -> None:
    timer = threading.Timer(0.2, lambda: emulator.inject_message(USER, "wake up"))
    timer.start()
    try:
        # the poll asks for 30 s; the client gives up after 5 s, so only a woken poll passes
        response = httpx.post(api(emulator, "getUpdates"), json={"timeout": 30}, timeout=5)
    finally:
        timer.join()
    assert [u["message"]["text"] for u in response.json()["result"]] == ["wake up"]


def test_long_poll_without_updates_waits_for_its_timeout(emulator: Emulator) -> None:
    started = time.monotonic()
    response = httpx.post(api(emulator, "getUpdates"), data={"timeout": "1"}, timeout=5)
    assert response.json() == {"ok": True, "result": []}
    assert time.monotonic() - started >= 0.9


def test_allowed_updates_filter_and_persist(emulator: Emulator) -> None:
    emulator.add_user(USER)
    with httpx.Client(timeout=5) as client:
        sent = client.post(api(emulator, "sendMessage"),
                           json={"chat_id": USER, "text": "pick", "reply_markup": KEYBOARD.to_dict()}).json()
        emulator.inject_message(USER, "ignored text")
        press = emulator.inject_callback(USER, sent["result"]["message_id"], "yes")
        only_presses = client.post(api(emulator, "getUpdates"),
                                   data={"allowed_updates": '["callback_query"]'}).json()["result"]
        assert [u["update_id"] for u in only_presses] == [press]
        assert only_presses[0]["callback_query"]["message"]["reply_markup"] == KEYBOARD.to_dict()
        emulator.inject_message(USER, "also ignored")  # the setting persists without the parameter
        assert [u["update_id"] for u in client.post(api(emulator, "getUpdates")).json()["result"]] == [press]


def test_json_form_query_and_multipart_encodings_are_all_accepted(emulator: Emulator) -> None:
    emulator.add_user(USER)
    markup = {"inline_keyboard": [[{"text": "Open", "callback_data": "open"}]]}
    with httpx.Client(timeout=5) as client:
        as_json = client.post(api(emulator, "sendMessage"), json={"chat_id": USER, "text": "j",
                                                                  "reply_markup": markup})
        as_form = client.post(api(emulator, "sendMessage"),
                              data={"chat_id": str(USER), "text": "f", "reply_markup": json.dumps(markup)})
        as_query = client.get(api(emulator, "sendMessage"), params={"chat_id": USER, "text": "q"})
        as_multipart = client.post(api(emulator, "sendDocument"),
                                   data={"chat_id": str(USER), "reply_markup": json.dumps(markup)},
                                   files={"document": ("notes.txt", b"hello", "text/plain")})
    for response in (as_json, as_form):
        assert response.json()["result"]["reply_markup"] == markup
    assert as_query.json()["result"]["text"] == "q"
    document = as_multipart.json()["result"]
    assert document["document"]["file_name"] == "notes.txt" and document["document"]["file_size"] == 5
    assert document["reply_markup"] == markup and document["from"]["is_bot"] is True


def test_a_second_poller_cuts_the_first_short_with_409(emulator: Emulator) -> None:
    first: dict[str, Any] = {}

    def poll() -> None:
        first["response"] = httpx.post(api(emulator, "getUpdates"), json={"timeout": 20}, timeout=10)

    poller = threading.Thread(target=poll)
    poller.start()
    emulator.wait_for(lambda: emulator.waiting_polls() == 1, timeout=5)
    second = httpx.post(api(emulator, "getUpdates"), json={"timeout": 0}, timeout=5)
    poller.join(10)
    assert second.json() == {"ok": True, "result": []}
    assert first["response"].status_code == 409
    assert first["response"].json()["description"].startswith("Conflict: terminated by other getUpdates request")


def test_file_limits_and_download_route(emulator: Emulator) -> None:
    small = emulator.inject_document(USER, "a.csv", b"1,2\n")
    big = emulator.inject_document(USER, "big.csv", b"0" * (20 * 1024 * 1024 + 1))
    file_ids = {u["update_id"]: u["message"]["document"]["file_id"] for u in emulator.pending_updates()}
    with httpx.Client(timeout=10) as client:
        path = client.post(api(emulator, "getFile"), json={"file_id": file_ids[small]}).json()["result"]["file_path"]
        assert client.get(f"{emulator.file_url}{emulator.token}/{path}").content == b"1,2\n"
        assert client.get(f"{emulator.file_url}{emulator.token}/documents/nope.csv").status_code == 404
        assert client.get(f"{emulator.file_url}42:other/{path}").status_code == 404
        too_big = client.post(api(emulator, "getFile"), json={"file_id": file_ids[big]})
    assert (too_big.status_code, too_big.json()["description"]) == (400, "Bad Request: file is too big")


def test_injections_from_many_threads_get_unique_ordered_update_ids(emulator: Emulator) -> None:
    def chatter(user: int) -> None:
        for i in range(25):
            emulator.inject_message(user, f"{user}-{i}")

    threads = [threading.Thread(target=chatter, args=(100 + n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    updates = httpx.post(api(emulator, "getUpdates"), json={"limit": 100}, timeout=5).json()["result"]
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == 100
    for user in range(100, 104):  # each chat's messages kept their order and own numbering
        texts = [u["message"]["text"] for u in updates if u["message"]["chat"]["id"] == user]
        assert texts == [f"{user}-{i}" for i in range(25)]
        assert [m.message_id for m in emulator.messages(user)] == list(range(1, 26))


def test_inject_callback_refuses_buttons_the_message_does_not_have(emulator: Emulator) -> None:
    emulator.add_user(USER)
    sent = httpx.post(api(emulator, "sendMessage"), json={"chat_id": USER, "text": "pick",
                                                          "reply_markup": KEYBOARD.to_dict()}, timeout=5).json()
    message_id = sent["result"]["message_id"]
    with pytest.raises(ValueError, match="no button with callback_data 'maybe'"):
        emulator.inject_callback(USER, message_id, "maybe")
    with pytest.raises(ValueError, match="no message 99"):
        emulator.inject_callback(USER, 99, "yes")
    assert emulator.inject_callback(USER, message_id, "maybe", strict=False) > 0


def test_stop_releases_a_waiting_long_poll_and_a_busy_port_is_reported() -> None:
    emu = Emulator().start()
    with pytest.raises(RuntimeError, match="could not listen"):
        Emulator(port=emu.port).start()
    outcome: dict[str, Any] = {}

    def poll() -> None:
        try:
            outcome["result"] = httpx.post(api(emu, "getUpdates"), json={"timeout": 60}, timeout=10).json()
        except httpx.HTTPError as error:
            outcome["error"] = error

    poller = threading.Thread(target=poll)
    poller.start()
    emu.wait_for(lambda: emu.waiting_polls() == 1, timeout=5)
    emu.stop(timeout=5)
    poller.join(10)
    assert not poller.is_alive() and outcome.get("result", {"ok": True, "result": []})["result"] == []
    assert not emu.running


def test_delay_next_holds_one_answer_back(emulator: Emulator) -> None:
    emulator.delay_next("getMe", 2.0)
    with httpx.Client() as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(api(emulator, "getMe"), timeout=0.2)
        assert client.post(api(emulator, "getMe"), timeout=5).json()["ok"] is True


def test_group_chats_keep_their_own_transcript(emulator: Emulator) -> None:
    group = -100123
    assert emulator.add_user(USER, chat_id=group) == group
    update_id = emulator.inject_message(USER, "hello group", chat_id=group)
    update = emulator.pending_updates()[0]
    assert update["update_id"] == update_id
    assert update["message"]["chat"] == {"id": group, "type": "group", "title": f"Group {group}"}
    assert update["message"]["from"]["id"] == USER
    assert [m.text for m in emulator.messages(group)] == ["hello group"] and emulator.messages(USER) == []


def test_an_emulator_bug_is_a_readable_500_not_a_broken_connection(emulator: Emulator,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(state: Any, params: Any) -> None:
        raise KeyError("oops")

    monkeypatch.setitem(METHODS, "getWebhookInfo", broken)
    response = httpx.post(api(emulator, "getWebhookInfo"), timeout=5)
    assert response.status_code == 500
    assert response.json()["description"] == "Internal Server Error: emulator failed on getWebhookInfo: KeyError('oops')"


def test_bad_tokens_and_faults_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="not shaped like a Bot API token"):
        Emulator(token="no-colon")
    with pytest.raises(ValueError, match="cannot inject HTTP status 418"):
        Emulator().fail_next("sendMessage", status=418)
    with pytest.raises(ValueError, match="empty message"):
        Emulator().inject_message(USER, "  ")
