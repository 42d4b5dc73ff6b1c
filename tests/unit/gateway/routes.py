"""The ComfyUI v0.3.76 route table (shared/comfy/README.md §9) with what the user role may do.

One table drives the unit truth table and the HTTP auth matrix. ``spelling``: both, plain or api.
``user``: True allowed, False denied, or a string naming the check that decides on the request.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    spelling: str
    user: bool | str


ROUTES: tuple[Route, ...] = (
    Route("POST", "/prompt", "both", "prompt_graph"),
    Route("GET", "/prompt", "both", True),
    Route("POST", "/upload/image", "both", True),
    Route("POST", "/upload/mask", "both", True),
    Route("GET", "/view", "both", True),
    Route("GET", "/view_metadata/checkpoints", "both", False),
    Route("GET", "/history", "both", True),
    Route("GET", "/history/abc-123", "both", True),
    Route("GET", "/queue", "both", True),
    Route("POST", "/queue", "both", "no_clear"),
    Route("POST", "/history", "both", "no_clear"),
    Route("POST", "/interrupt", "both", True),
    Route("POST", "/free", "both", False),
    Route("GET", "/system_stats", "both", True),
    Route("GET", "/embeddings", "both", True),
    Route("GET", "/extensions", "both", True),
    Route("GET", "/models", "both", True),
    Route("GET", "/models/loras", "both", True),
    Route("GET", "/object_info", "both", True),
    Route("GET", "/object_info/KSampler", "both", True),
    Route("GET", "/features", "both", True),
    Route("GET", "/ws", "both", True),
    Route("GET", "/", "plain", True),
    Route("GET", "/settings", "both", True),
    Route("POST", "/settings", "both", True),
    Route("GET", "/settings/Comfy.Locale", "both", True),
    Route("POST", "/settings/Comfy.Locale", "both", True),
    Route("GET", "/users", "both", True),
    Route("POST", "/users", "both", False),
    Route("GET", "/userdata", "both", True),
    Route("GET", "/v2/userdata", "both", True),
    Route("GET", "/userdata/comfy.templates.json", "both", True),
    Route("POST", "/userdata/workflows%2Fmine.json", "both", "userdata_workflows"),
    Route("DELETE", "/userdata/workflows%2Fmine.json", "both", "userdata_workflows"),
    Route("POST", "/userdata/comfy.settings.json", "both", "userdata_workflows"),
    Route("POST", "/userdata/workflows%2Fa.json/move/workflows%2Fb.json", "both", "userdata_workflows"),
    Route("GET", "/experiment/models", "both", True),
    Route("GET", "/experiment/models/loras", "both", True),
    Route("GET", "/experiment/models/preview/loras/0/a.webp", "both", True),
    Route("GET", "/workflow_templates", "both", True),
    Route("GET", "/i18n", "both", True),
    Route("GET", "/global_subgraphs", "both", True),
    Route("GET", "/global_subgraphs/abc", "both", True),
    Route("GET", "/internal/logs", "plain", "internal_logs"),
    Route("GET", "/internal/logs/raw", "plain", False),
    Route("GET", "/internal/folder_paths", "plain", False),
    Route("GET", "/internal/files/output", "plain", False),
    Route("PATCH", "/internal/logs/subscribe", "plain", False),
    Route("GET", "/vhs/viewvideo", "both", "no_path_type"),
    Route("GET", "/viewvideo", "both", "no_path_type"),
    Route("GET", "/vhs/queryvideo", "both", "no_path_type"),
    Route("GET", "/vhs/getpath", "both", False),
    Route("GET", "/getpath", "both", False),
    Route("GET", "/templates/index.json", "plain", True),
    Route("GET", "/assets/index-abc.js", "plain", True),
    Route("GET", "/scripts/app.js", "plain", True),
    Route("GET", "/extensions/core/groupNode.js", "plain", True),
    Route("GET", "/extensions/ComfyUI-KJNodes/js/a.js", "plain", True),
    Route("GET", "/kjweb_async/marked.min.js", "plain", True),
    Route("GET", "/docs/index.html", "plain", True),
    Route("GET", "/materialdesignicons.min.css", "plain", True),
    Route("GET", "/user.css", "plain", True),
    Route("GET", "/workflow_templates/ComfyUI-KJNodes/a.json", "api", True),
    # ComfyUI-Manager and other routes this bundle does not ship: never for users
    Route("GET", "/manager/queue/status", "both", False),
    Route("POST", "/customnode/install", "both", False),
    Route("GET", "/snapshot/getlist", "both", False),
    Route("GET", "/jobs", "both", False),
    Route("GET", "/metrics", "plain", False),
)


def spellings(route: Route) -> list[str]:
    if route.spelling == "plain":
        return [route.path]
    if route.spelling == "api":
        return ["/api" + route.path]
    return [route.path, "/api" + route.path]


def other_spelling(route: Route) -> str | None:
    """The spelling ComfyUI does not serve for this route (denied for users: not understood)."""
    if route.spelling == "plain":
        return "/api" + route.path
    if route.spelling == "api":
        return route.path
    return None
