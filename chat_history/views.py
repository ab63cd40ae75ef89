"""The chat history API: JWT end users (their own data) and scoped service tokens.

Handlers validate, call one selector or service and shape the answer with the
functions of ``chat_history.serializers``. Another user's session or message
is a 404 everywhere (the selectors scope every lookup).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from chat_history import imports, search, selectors, services, stats
from chat_history.errors import ImportFileTooLargeError
from chat_history.exports import EXPORTERS, streaming_content
from chat_history.models import CLIENT_MESSAGE_ID_MAX_LENGTH, ImportStatus
from chat_history.serializers import (
    DeleteQuerySerializer,
    ExportQuerySerializer,
    FeedbackInputSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    ImportInputSerializer,
    ImportJobSerializer,
    MemberAddInputSerializer,
    MemberSerializer,
    MemberUpdateInputSerializer,
    MessageCreateBodySerializer,
    MessageCreateInputSerializer,
    MessageSerializer,
    MessageUpdateInputSerializer,
    MessageVersionSerializer,
    OpenAIMessageSerializer,
    ReadInputSerializer,
    ReadMarkerSerializer,
    SearchHitSerializer,
    SearchQuerySerializer,
    SessionCreateInputSerializer,
    SessionDetailSerializer,
    SessionListQuerySerializer,
    SessionSerializer,
    SessionUpdateInputSerializer,
    StatsSerializer,
    StreamAcceptedSerializer,
    StreamInputSerializer,
    history_data,
    import_job_data,
    member_data,
    message_data,
    openai_messages_data,
    session_data,
    session_detail_data,
    versions_data,
)
from core.pagination import page_of
from core.parsers import declared_length
from core.permissions import EndUserOnly, EndUserOrScopedService, ScopedServiceOnly
from core.schema import error_response
from core.throttles import WriteThrottle
from core.validation import idempotency_key, validated, validated_query
from realtime import presence
from usage.serializers import usage_error_fields
from users.models import Scope

READ, WRITE = Scope.CHAT_READ, Scope.CHAT_WRITE
# An edit answers with the whole object: it needs what a read needs too.
EDIT = (READ, WRITE)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same as client_message_id in the body: a retry with a key already "
    "used in this session returns the original message (200) instead of a copy.",
)
_REPLAYED = OpenApiResponse(
    MessageSerializer, description="Idempotent replay: the message created earlier with this key."
)
# A message that records usage (metadata.usage) may meet a used-up budget.
_CREATE_CONFLICT = error_response(
    "The key was already used in this session for a different role or content (code "
    "idempotency_key_reused, with message_id); or the message records usage and a monthly "
    "budget of the owner or the key was used up (code budget_exceeded, with budget, metric, "
    "key_id and month): nothing was written.",
    component="MessageCreateConflictError",
    message_id=serializers.IntegerField(
        required=False, help_text="idempotency_key_reused: the message the key already names."
    ),
    **usage_error_fields(),
)
_NO_CONTENT = OpenApiResponse(description="Deleted.")


class FormatParamNegotiation(DefaultContentNegotiation):
    """Here ``?format=`` picks an output shape (openai, markdown), not a renderer."""

    class settings:  # noqa: N801 - stands in for DRF's api_settings
        URL_FORMAT_OVERRIDE = None


def _create_message(request, *, session_id, data: dict) -> Response:
    session = selectors.session_get(actor=request.user, session_id=session_id)
    message, created = services.chat_message_create(
        actor=request.user,
        session=session,
        role=data["role"],
        content=data["content"],
        metadata=data.get("metadata"),
        client_message_id=idempotency_key(
            request,
            data.get("client_message_id"),
            field="client_message_id",
            max_length=CLIENT_MESSAGE_ID_MAX_LENGTH,
        ),
        stream_id=data.get("stream_id"),
        parent_id=data.get("parent_id", services.APPEND),
        author_id=data.get("author_id"),
        key_id=data.get("key_id"),
    )
    return Response(
        message_data(message), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


@extend_schema(tags=["chat history"])
class ChatSessionViewSet(viewsets.GenericViewSet):
    """A user's conversations. Services: chat:read to read any, chat:write to write any."""

    permission_classes = [EndUserOrScopedService]
    service_scopes = {
        "list": READ,
        "retrieve": READ,
        "messages": READ,
        "export": READ,
        "create": WRITE,
        "partial_update": EDIT,
        "destroy": WRITE,
        "create_message": WRITE,
        "stream": WRITE,
        "members": READ,
        "add_member": WRITE,
        "update_member": EDIT,
        "remove_member": WRITE,
    }
    throttle_classes = [WriteThrottle]
    write_throttles = {"create_message": "messages", "stream": "stream", "add_member": "members"}
    lookup_field = "session_id"
    lookup_value_converter = "uuid"
    content_negotiation_class = FormatParamNegotiation

    @extend_schema(
        summary="List sessions (pinned first, newest activity first)",
        parameters=[SessionListQuerySerializer],
        responses=SessionSerializer(many=True),
    )
    def list(self, request):
        params = validated_query(SessionListQuerySerializer, request.query_params)
        page = page_of(self, selectors.session_list(actor=request.user, **params))
        return self.get_paginated_response([session_data(session) for session in page])

    @extend_schema(
        summary="Create a session",
        request=SessionCreateInputSerializer,
        responses={201: SessionDetailSerializer},
    )
    def create(self, request):
        data = validated(SessionCreateInputSerializer, request.data)
        session = services.chat_session_create(actor=request.user, **data)
        return Response(session_detail_data(session), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get a session", responses=SessionDetailSerializer)
    def retrieve(self, request, session_id):
        session = selectors.session_get(actor=request.user, session_id=session_id)
        return Response(session_detail_data(session))

    @extend_schema(
        summary="Rename, set the instructions, archive or pin a session",
        request=SessionUpdateInputSerializer,
        responses=SessionDetailSerializer,
    )
    def partial_update(self, request, session_id):
        data = validated(SessionUpdateInputSerializer, request.data)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        session = services.chat_session_update(actor=request.user, session=session, **data)
        return Response(session_detail_data(session))

    @extend_schema(
        summary="Move a session to the trash (or delete it for good)",
        description="A trashed session is hidden everywhere (lists, search, stats, sockets) "
        f"until restored, and purged after {settings.CHAT_TRASH_RETENTION_DAYS} days. "
        "`?permanent=true` deletes it and its messages at once, from the trash too.",
        parameters=[DeleteQuerySerializer],
        responses={204: _NO_CONTENT},
    )
    def destroy(self, request, session_id):
        permanent = validated_query(DeleteQuerySerializer, request.query_params)["permanent"]
        session = selectors.session_get(
            actor=request.user, session_id=session_id, trash="include" if permanent else "exclude"
        )
        services.chat_session_delete(actor=request.user, session=session, permanent=permanent)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Take a session out of the trash (owner only)",
        request=None,
        responses=SessionDetailSerializer,
    )
    @action(detail=True, methods=["post"], permission_classes=[EndUserOnly])
    def restore(self, request, session_id):
        session = selectors.session_get(actor=request.user, session_id=session_id, trash="only")
        session = services.chat_session_restore(actor=request.user, session=session)
        return Response(session_detail_data(session))

    @extend_schema(
        summary="A page of the session's messages (keyset pagination)",
        description=(
            "The active path of the session's message tree, oldest first (`?leaf=<id>`: the "
            "path ending at that message; `?trashed=true`: the session's trashed messages). "
            "Without a cursor: the newest `limit` messages (default "
            f"{settings.CHAT_HISTORY_DEFAULT_LIMIT}, at most {settings.CHAT_HISTORY_MAX_LIMIT}). "
            "`?before=<oldest_id>` walks back, `?after=<newest_id>` forward. "
            "`?format=openai` returns just `[{role, content}]` for an LLM prompt."
        ),
        parameters=[HistoryQuerySerializer],
        responses=PolymorphicProxySerializer(
            component_name="HistoryOrOpenAIMessages",
            serializers=[HistorySerializer, OpenAIMessageSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
    )
    @action(detail=True, methods=["get"], url_path="messages")
    def messages(self, request, session_id):
        params = validated_query(HistoryQuerySerializer, request.query_params)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        limit = min(
            params.get("limit", settings.CHAT_HISTORY_DEFAULT_LIMIT),
            settings.CHAT_HISTORY_MAX_LIMIT,
        )
        if params["trashed"]:
            selectors.trash_view_check(actor=request.user, session=session)
        page = selectors.message_history(
            session=session,
            limit=limit,
            before=params.get("before"),
            after=params.get("after"),
            leaf=params.get("leaf"),
            trashed=params["trashed"],
        )
        if params["format"] == "openai":
            return Response(openai_messages_data(session, page))
        return Response(history_data(session, page))

    @extend_schema(
        summary="Add a message to the session",
        request=MessageCreateBodySerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: MessageSerializer, 200: _REPLAYED, 409: _CREATE_CONFLICT},
    )
    @messages.mapping.post
    def create_message(self, request, session_id):
        data = validated(MessageCreateBodySerializer, request.data)
        return _create_message(request, session_id=session_id, data=data)

    @extend_schema(
        summary="Relay a piece of a streamed assistant reply (service only)",
        description=(
            "Relays `delta` to every socket of the session as an `assistant.delta` event "
            "(and `typing` as `assistant.typing`). Nothing is stored: save the final reply "
            "afterwards as an ordinary message with the same `stream_id`."
        ),
        request=StreamInputSerializer,
        responses={
            202: StreamAcceptedSerializer,
            503: error_response(
                "The channel layer is down (code realtime_unavailable), or the database "
                "(database_unavailable)."
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[ScopedServiceOnly])
    def stream(self, request, session_id):
        data = validated(StreamInputSerializer, request.data)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        services.chat_stream_relay(actor=request.user, session=session, **data)
        return Response({"relayed": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The session's members (seed 002's room participants)",
        description="The owner first, then by arrival; `online` and `last_seen_at` say "
        "who holds a socket now (null if presence is unavailable).",
        responses=MemberSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def members(self, request, session_id):
        session = selectors.session_get(actor=request.user, session_id=session_id)
        members = selectors.session_members(session=session)
        statuses = presence.user_statuses([member.user_id for member in members])
        return Response([member_data(m, statuses.get(m.user_id)) for m in members])

    @extend_schema(
        summary="Add a member by user id or email (owner only)",
        description=f"At most {settings.CHAT_SESSION_MAX_MEMBERS} members, the owner "
        "included (409 member_limit_reached); someone already a member is a 409 "
        "already_member. The new member finds the session in their list at once.",
        request=MemberAddInputSerializer,
        responses={
            201: MemberSerializer,
            409: error_response(
                "Already a member (already_member), or the session is full "
                "(member_limit_reached, with max_members).",
                component="MemberAddConflictError",
                max_members=serializers.IntegerField(required=False),
            ),
        },
    )
    @members.mapping.post
    def add_member(self, request, session_id):
        data = validated(MemberAddInputSerializer, request.data)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        member = services.chat_member_add(actor=request.user, session=session, **data)
        return Response(member_data(member), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a member's role (owner only); role owner transfers the session",
        request=MemberUpdateInputSerializer,
        responses={
            200: MemberSerializer,
            409: error_response("The owner's own role (owner_cannot_leave): give it to a member."),
        },
    )
    @action(detail=True, methods=["patch"], url_path="members/<int:user_id>")
    def update_member(self, request, session_id, user_id):
        data = validated(MemberUpdateInputSerializer, request.data)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        services.chat_member_update(actor=request.user, session=session, user_id=user_id, **data)
        return Response(member_data(selectors.session_member_get(session=session, user_id=user_id)))

    @extend_schema(
        summary="Remove a member (owner), or leave (yourself)",
        description="The owner cannot leave: transfer the session first, or delete it. "
        "The removed member's sockets on the session close with code 4410.",
        responses={
            204: _NO_CONTENT,
            409: error_response("The owner cannot leave (owner_cannot_leave)."),
        },
    )
    @update_member.mapping.delete
    def remove_member(self, request, session_id, user_id):
        session = selectors.session_get(actor=request.user, session_id=session_id)
        services.chat_member_remove(actor=request.user, session=session, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Set my read marker (default: the newest message)",
        description="My unread count becomes the live messages after it written by others; "
        "a marker may move back (mark unread from there).",
        request=ReadInputSerializer,
        responses=ReadMarkerSerializer,
    )
    @action(detail=True, methods=["post"], permission_classes=[EndUserOnly])
    def read(self, request, session_id):
        data = validated(ReadInputSerializer, request.data)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        member = services.chat_session_read(actor=request.user, session=session, **data)
        return Response(
            {
                "last_read_message_id": member.last_read_message_id,
                "unread_count": member.unread_count,
            }
        )

    @extend_schema(
        summary="Download the whole conversation",
        description=(
            "`json` (default): `{session, messages}`, the active path; `markdown`: a "
            "transcript of it; `lossless`: the versioned format `POST /import/` reads back "
            '(`{"format": "chatbot.conversation", "version": 1, session, messages}`: every '
            "branch, trashed messages, earlier versions, metadata, feedback; see "
            'docs/export-format.md); `openai`: the active path as `{"messages": [{role, '
            "content}]}`, the instructions first as the system message (a chat-completions "
            "body, and a line of a fine-tuning JSONL file). `lossless` is the owner's (it holds "
            "the trash); other members get 403 owner_only."
        ),
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="json, lossless or openai, as an attachment.",
            ),
            (200, "text/markdown"): OpenApiResponse(
                OpenApiTypes.STR, description="A Markdown transcript as an attachment."
            ),
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request, session_id):
        params = validated_query(ExportQuerySerializer, request.query_params)
        session = selectors.session_get(actor=request.user, session_id=session_id)
        exporter = EXPORTERS[params["format"]]
        if exporter.whole_tree:
            selectors.whole_tree_check(actor=request.user, session=session)
        messages = selectors.message_iter_all(session=session, whole_tree=exporter.whole_tree)
        response = StreamingHttpResponse(
            streaming_content(exporter.render(session, messages), request=request._request),
            content_type=exporter.content_type,
        )
        filename = f"chat-{session.session_id}.{exporter.extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@extend_schema(tags=["chat history"])
class ChatMessageViewSet(viewsets.GenericViewSet):
    """Single messages. Services: chat:read to read any, chat:write to write any."""

    permission_classes = [EndUserOrScopedService]
    service_scopes = {
        "retrieve": READ,
        "siblings": READ,
        "versions": READ,
        "create": WRITE,
        "partial_update": EDIT,
        "destroy": WRITE,
    }
    throttle_classes = [WriteThrottle]
    write_throttles = {"create": "messages"}
    lookup_url_kwarg = "message_id"
    lookup_value_converter = "int"

    @extend_schema(
        summary="Add a message to a session named in the body",
        request=MessageCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: MessageSerializer,
            200: _REPLAYED,
            404: error_response("No such session, or it belongs to someone else."),
            409: _CREATE_CONFLICT,
        },
    )
    def create(self, request):
        data = validated(MessageCreateInputSerializer, request.data)
        return _create_message(request, session_id=data["session_id"], data=data)

    @extend_schema(summary="Get a message", responses=MessageSerializer)
    def retrieve(self, request, message_id):
        return Response(
            message_data(selectors.message_get(actor=request.user, message_id=message_id))
        )

    @extend_schema(
        summary="Edit a message's content or merge into its metadata",
        request=MessageUpdateInputSerializer,
        responses=MessageSerializer,
    )
    def partial_update(self, request, message_id):
        data = validated(MessageUpdateInputSerializer, request.data)
        message = selectors.message_get(actor=request.user, message_id=message_id)
        message = services.chat_message_update(actor=request.user, message=message, **data)
        return Response(message_data(message))

    @extend_schema(
        summary="Move a message to the trash (or delete it for good)",
        description="A trashed message leaves every page, search and stat; its replies "
        "stay on their path. `?permanent=true` deletes it at once (from the trash too), "
        "handing its replies to its parent.",
        parameters=[DeleteQuerySerializer],
        responses={204: _NO_CONTENT},
    )
    def destroy(self, request, message_id):
        permanent = validated_query(DeleteQuerySerializer, request.query_params)["permanent"]
        message = selectors.message_get(
            actor=request.user, message_id=message_id, trash="include" if permanent else "exclude"
        )
        services.chat_message_delete(actor=request.user, message=message, permanent=permanent)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Take a message out of the trash (owner only)",
        request=None,
        responses=MessageSerializer,
    )
    @action(detail=True, methods=["post"], permission_classes=[EndUserOnly])
    def restore(self, request, message_id):
        message = selectors.message_get(actor=request.user, message_id=message_id, trash="only")
        message = services.chat_message_restore(actor=request.user, message=message)
        return Response(message_data(message))

    @extend_schema(
        summary="The message and its siblings (the replies to the same parent)",
        description="Oldest first: what a 2/3 branch switcher steps through. Switch with "
        "`PATCH sessions/{session_id}/ {active_leaf_id}`.",
        responses=MessageSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def siblings(self, request, message_id):
        message = selectors.message_get(actor=request.user, message_id=message_id)
        return Response([message_data(m) for m in selectors.message_siblings(message=message)])

    @extend_schema(
        summary="Every content the message has had (edits), the current one last",
        responses=MessageVersionSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, message_id):
        message = selectors.message_get(actor=request.user, message_id=message_id)
        revisions = selectors.message_revisions(message=message)
        return Response(versions_data(message, revisions))

    @extend_schema(
        summary="Rate a message (owner only; replaces an earlier rating)",
        request=FeedbackInputSerializer,
        responses=MessageSerializer,
    )
    @action(detail=True, methods=["put"], permission_classes=[EndUserOnly])
    def feedback(self, request, message_id):
        data = validated(FeedbackInputSerializer, request.data)
        message = selectors.message_get(actor=request.user, message_id=message_id)
        message = services.chat_message_feedback_set(actor=request.user, message=message, **data)
        return Response(message_data(message))

    @extend_schema(
        summary="Remove my rating of a message",
        responses={200: MessageSerializer, 404: error_response("No such message, or no rating.")},
    )
    @feedback.mapping.delete
    def delete_feedback(self, request, message_id):
        message = selectors.message_get(actor=request.user, message_id=message_id)
        message = services.chat_message_feedback_delete(actor=request.user, message=message)
        return Response(message_data(message))


@extend_schema(tags=["chat history"])
class ChatSearchViewSet(viewsets.GenericViewSet):
    """Full-text search over the signed-in user's own messages and session titles."""

    permission_classes = [EndUserOnly]

    @extend_schema(
        summary="Search my messages and session titles",
        description="Every word must match (as a word prefix on PostgreSQL, a substring "
        "on SQLite). Newest first; snippets are HTML-escaped with matches in <mark>.",
        parameters=[SearchQuerySerializer],
        responses=SearchHitSerializer(many=True),
    )
    def list(self, request):
        terms = validated_query(SearchQuerySerializer, request.query_params)["q"]
        page = page_of(self, search.search_hits(user=request.user, terms=terms))
        hits = search.search_snippets(hits=page, terms=terms)
        return self.get_paginated_response(SearchHitSerializer(hits, many=True).data)


@extend_schema(tags=["chat history"])
class ChatStatsViewSet(viewsets.ViewSet):
    """Usage totals of the signed-in user."""

    permission_classes = [EndUserOnly]

    @extend_schema(summary="My chat usage, overall and per day", responses=StatsSerializer)
    def summary(self, request):
        return Response(StatsSerializer(stats.chat_stats(user=request.user)).data)


# --- Imports ------------------------------------------------------------------------

# Room for the multipart framing around the file (boundaries, part headers).
_MULTIPART_ALLOWANCE = 64 * 1024


class ImportUploadParser(parsers.MultiPartParser):
    """multipart/form-data; a body declared larger than the import limit is
    refused (413) before it is read."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.CHAT_IMPORT_MAX_UPLOAD_SIZE
        if declared_length(parser_context) > limit + _MULTIPART_ALLOWANCE:
            raise ImportFileTooLargeError(max_size=limit)
        return super().parse(stream, media_type, parser_context)


_IMPORT_TOO_LARGE = error_response(
    "`file_too_large`: over CHAT_IMPORT_MAX_UPLOAD_SIZE (`max_size`, in bytes), "
    "or `payload_too_large`: a body larger than any route accepts.",
    component="FileTooLargeError",
    max_size=serializers.IntegerField(required=False),
)


@extend_schema(tags=["chat history"])
class ChatImportViewSet(viewsets.GenericViewSet):
    """Bringing conversations in from a file: this service's lossless export,
    ChatGPT's conversations.json or an Open WebUI export. User accounts only."""

    permission_classes = [EndUserOnly]
    parser_classes = [ImportUploadParser]
    throttle_classes = [WriteThrottle]
    write_throttles = {"create": "uploads"}
    lookup_url_kwarg = "job_id"
    lookup_value_converter = "uuid"

    @extend_schema(
        summary="Import conversations from a file",
        description=(
            "multipart/form-data with one `file` part (and optionally `format`). The whole "
            "file is checked first: a file that is not a valid export is a 400 naming each "
            "problem by its place in the file (`errors`), and nothing is imported. Each "
            "conversation becomes a session with its branches, the active branch as it was "
            "shown; what cannot be imported (tool calls, hidden system messages, images) is "
            "skipped and listed in `report.skipped`. A conversation imported before (same "
            "source id) is skipped, so importing a file again, or a later export that "
            "overlaps it, adds only what is new. Files up to CHAT_IMPORT_INLINE_MAX_SIZE "
            "are imported at once (201, the finished job); larger ones in the background "
            "(202, a pending job: poll `GET imports/{job_id}/`)."
        ),
        request={"multipart/form-data": ImportInputSerializer},
        responses={
            201: OpenApiResponse(ImportJobSerializer, description="Imported: the finished job."),
            202: OpenApiResponse(
                ImportJobSerializer, description="Accepted: the job runs in the background."
            ),
            413: _IMPORT_TOO_LARGE,
        },
    )
    def create(self, request):
        data = validated(ImportInputSerializer, request.data)
        job = imports.chat_import_start(
            user=request.user, file=data["file"], format=data.get("format")
        )
        finished = job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
        return Response(
            import_job_data(job),
            status=status.HTTP_201_CREATED if finished else status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="An import job: its progress, then its report",
        responses=ImportJobSerializer,
    )
    def retrieve(self, request, job_id):
        job = selectors.import_job_get(user=request.user, job_id=job_id)
        return Response(import_job_data(job))


class RoomAliasViewSet(ChatSessionViewSet):
    """Seed 002's room paths (``/api/rooms/...``) over the sessions they are
    here: the same handlers, left out of the schema (the session paths are
    the documented ones)."""

    schema = None


def room_view(actions: dict[str, Any]):
    """``RoomAliasViewSet`` serving ``actions``, with their ``@action`` options."""
    options: dict = {}
    for name in actions.values():
        options.update(getattr(getattr(ChatSessionViewSet, name), "kwargs", {}))
    return RoomAliasViewSet.as_view(actions, **options)
