"""Errors in OpenAI's shape: `{"error": {"message", "type", "code", "param"}}`, with the HTTP
status OpenAI's API uses for each kind (the `openai` client maps the status to its exception
class: 400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404
NotFoundError, 409 ConflictError, 413 and others APIStatusError)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400: the request is wrong; `param` names the field to fix."""
    return ApiError(400, message, param=param, code=code)


def not_found(what: str, ident: str, param: str | None = None) -> ApiError:
    """404: also what another namespace's object gets (its existence is not disclosed)."""
    return ApiError(404, f"No such {what}: {ident}", param=param, code=f"{what}_not_found")


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, type="invalid_request_error", code="invalid_api_key")


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, type="invalid_request_error", code="permission_denied")
