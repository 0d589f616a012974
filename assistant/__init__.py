"""Cited question answering over a folder of Chinese policy texts: `Assistant.open().ask(question)`."""
from assistant.errors import AssistantError
from assistant.records import Answer, Citation, Passage


def __getattr__(name):
    # Imported lazily so `import assistant` (the CLI's --help, `assistant build`) does not load faiss or torch.
    if name in ("Assistant", "AskConfig"):
        from assistant import api
        return getattr(api, name)
    raise AttributeError(name)


__all__ = ["Assistant", "AskConfig", "Answer", "Passage", "Citation", "AssistantError"]
