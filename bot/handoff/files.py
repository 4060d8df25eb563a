"""Files sent to customers, for operators: ``GET /api/v1/operator/files/{id}`` with an operator
session (the console shows them as download links in the transcript). An operator reads every
transcript, so any file sent in one."""

from __future__ import annotations

from aiohttp import web

from bot.files import file_response
from bot.handoff.auth import authorized
from bot.handoff.messages import FILES_PATH
from bot.http import json_response
from bot.storage.files import FileStore


def add_operator_file_routes(app: web.Application, files: FileStore) -> None:
    async def operator_file(request: web.Request) -> web.Response:
        await authorized(request, write=False)
        found = await files.get(request.match_info["file_id"])
        if found is None:
            return json_response({"error": "no such file"}, status=404)
        return file_response(*found)

    app.router.add_get(FILES_PATH + "/{file_id}", operator_file)
