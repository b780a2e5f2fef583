"""Secrets at rest: AES-GCM under one key-encryption key, each ciphertext bound to the id of what it protects.

The key is TASTEMAKER_KEY_ENCRYPTION_KEY, else DATA_DIR/access-keys.kek (32 random bytes in URL-safe base64,
written with mode 0600 on first use). Access-key secrets (tastemaker.api.keys) and webhook HMAC secrets
(tastemaker.store.webhooks) are sealed with it; the associated data (the access key id, the webhook id) makes
a ciphertext copied onto another row fail to open.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tastemaker.config import Settings
from tastemaker.errors import InvalidInputException

KEK_FILE = "access-keys.kek"
CIPHER_VERSION = "v1:"


class SecretBox:
    """AES-GCM encryption of secrets under the key-encryption key, each bound to the id of its owner."""

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek)

    @classmethod
    def open(cls, settings: Settings, *, create: bool) -> SecretBox | None:
        """The box for TASTEMAKER_KEY_ENCRYPTION_KEY or DATA_DIR/access-keys.kek (written, mode 0600, when
        `create` and missing); None when neither exists."""
        text = settings.key_encryption_key
        path = settings.data_dir / KEK_FILE
        if not text and path.exists():
            text = path.read_text().strip()
        if not text:
            if not create:
                return None
            text = base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()
            write_private(path, text.encode() + b"\n")
        try:
            kek = base64.urlsafe_b64decode(text.encode())
        except ValueError:
            kek = b""
        if len(kek) != 32:
            raise InvalidInputException(
                "The key-encryption key must be 32 random bytes in URL-safe base64, e.g. from python -c \"import "
                "base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())\".")
        return cls(kek)

    def encrypt(self, secret: str, owner_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), owner_id.encode())
        return CIPHER_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str, owner_id: str) -> str:
        if not ciphertext.startswith(CIPHER_VERSION):
            raise ValueError("unknown ciphertext format")
        raw = base64.urlsafe_b64decode(ciphertext[len(CIPHER_VERSION):].encode())
        return self._aead.decrypt(raw[:12], raw[12:], owner_id.encode()).decode()


def write_private(path: Path, data: bytes) -> None:
    """Create the file with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
