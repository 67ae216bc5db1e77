"""The review routes plans, reports and programme records share: submit, return, accept,
correct. Each is a POST on ``{item}/{action}`` that names the revision it changes in
If-Match, calls one use case and answers the item with its new ETag (and, where the change
queued a job, a ``Link`` to it); the kinds differ only in those use cases, who may call
them, the path's parameter and the answer's model.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Response

from nscl_api.conditional import IfMatch, expected_revision, monitor_link, sends
from nscl_api.deps import UowDep
from nscl_api.types import ResponseModel

View = TypeVar("View")

# A use case called as ``act(uow, caller, item_id, expected_revision=…[, reason=…])``.
Act = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class ReviewRoutes(Generic[View]):
    """Adds the review routes of one kind of item to ``router``, in the order they are added
    (the order the contract lists them in)."""

    router: APIRouter
    item_path: str  # e.g. "/v1/records/{record_id}"
    id_name: str  # the path parameter, e.g. "record_id"
    noun: str  # what If-Match problems speak of
    answer: type[ResponseModel]
    read: Callable[[View, Response], ResponseModel]  # sets the ETag and builds the answer
    errors: dict[int | str, dict[str, Any]]

    def add(
        self,
        action: str,
        act: Act,
        *,
        operation_id: str,
        summary: str,
        doc: str,
        caller: Any,
        reason: Any = None,
        monitored: bool = False,
    ) -> None:
        """``POST {item}/{action}``, called by ``caller`` (a security dependency).

        ``reason``: the annotation of a body naming why (None: no body); ``monitored``: the
        use case answers ``(view, job or None)``, and a job queued is linked as ``monitor``.
        """
        noun = self.noun

        async def endpoint(**given: Any) -> ResponseModel:
            response: Response = given["response"]
            extra = {} if reason is None else {"reason": given["body"].reason}
            done = await act(
                given["uow"], given["caller"], given[self.id_name],
                expected_revision=expected_revision(given["if_match"], noun), **extra,
            )  # fmt: skip
            view, job = done if monitored else (done, None)
            if job is not None:
                response.headers["Link"] = monitor_link(job.id)
            return self.read(view, response)

        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [
            inspect.Parameter(self.id_name, keyword, annotation=uuid.UUID),
            *([] if reason is None else [inspect.Parameter("body", keyword, annotation=reason)]),
            inspect.Parameter("uow", keyword, annotation=UowDep),
            inspect.Parameter("caller", keyword, annotation=caller),
            inspect.Parameter("response", keyword, annotation=Response),
            inspect.Parameter("if_match", keyword, annotation=IfMatch, default=None),
        ]
        endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        endpoint.__name__ = endpoint.__qualname__ = operation_id
        endpoint.__doc__ = doc
        self.router.post(
            f"{self.item_path}/{action}",
            operation_id=operation_id,
            response_model=self.answer,
            openapi_extra=sends("ETag", "Link") if monitored else sends("ETag"),
            summary=summary,
            responses=self.errors,
        )(endpoint)
