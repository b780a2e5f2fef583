"""The environment AWS's sample notebooks expect, built locally: a moto server for S3/IAM/STS/SSM, a Tastemaker
server for the three Personalize services, boto3 pointed at both purely through AWS_ENDPOINT_URL_* variables,
the SageMaker notebook-instance metadata file, the SSM parameters the getting-started CloudFormation stack
writes, and the downloads (MovieLens zips, the retail demo store CSVs) replaced by files made from the MovieLens
copy in ../shared/data. Nothing here changes a notebook's code: it only answers what the notebook reaches for.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]  # the checkout whose server is tested
SAGEMAKER_METADATA = "/opt/ml/metadata/resource-metadata.json"
REGION = "us-east-1"
# The getting-started notebook reads these two parameters, which its CloudFormation template creates.
SSM_BUCKET = "/cloudformation/personalize-s3-bucket"
SSM_ROLE = "/cloudformation/personalize-iam-role-arn"


@dataclass
class Environment:
    """Where things are: `shared` is an ml-latest-small folder (ratings.csv, movies.csv), `work` the scratch root."""

    shared: Path
    work: Path
    max_users: int | None = None
    metadata_file: Path = field(init=False)
    _ratings: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.metadata_file = self.work / "resource-metadata.json"
        self.metadata_file.write_text(json.dumps(
            {"ResourceArn": f"arn:aws:sagemaker:{REGION}:123456789012:notebook-instance/tastemaker-compat",
             "ResourceName": "tastemaker-compat"}))

    # -- MovieLens copies -------------------------------------------------------------------------------------

    def ratings(self) -> Path:
        """ratings.csv of the shared copy, cut to the first `max_users` users when asked (small runs)."""
        if self.max_users is None:
            return self.shared / "ratings.csv"
        if self._ratings is None:
            self._ratings = self.work / f"ratings-{self.max_users}-users.csv"
            with (self.shared / "ratings.csv").open() as src, self._ratings.open("w", newline="") as dst:
                reader, writer = csv.reader(src), csv.writer(dst)
                writer.writerow(next(reader))
                writer.writerows(row for row in reader if int(row[0]) <= self.max_users)
        return self._ratings

    def ml_latest_small(self, into: Path) -> Path:
        """The folder `unzip ml-latest-small.zip` makes: the shared files (ratings possibly cut)."""
        target = into / "ml-latest-small"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("movies.csv", "links.csv", "tags.csv", "README.txt"):
            if (self.shared / name).exists():
                shutil.copyfile(self.shared / name, target / name)
        shutil.copyfile(self.ratings(), target / "ratings.csv")
        return target

    def ml_100k(self, into: Path) -> Path:
        """The files of ml-100k the notebooks read (u.data tab-separated, u.item pipe-separated latin-1), made from
        ml-latest-small with movies renumbered 1..N in movieId order, as ml-100k numbers its movies."""
        target = into / "ml-100k"
        target.mkdir(parents=True, exist_ok=True)
        renumber: dict[str, int] = {}
        with (self.shared / "movies.csv").open(encoding="utf-8") as src, \
                (target / "u.item").open("w", encoding="latin-1", errors="replace") as dst:
            for row in csv.DictReader(src):
                renumber[row["movieId"]] = len(renumber) + 1
                title = row["title"].replace("|", "/")
                dst.write(f"{renumber[row['movieId']]}|{title}|01-Jan-1995||http://example.invalid|0\n")
        with self.ratings().open() as src, (target / "u.data").open("w") as dst:
            for row in csv.DictReader(src):
                dst.write(f"{row['userId']}\t{renumber[row['movieId']]}\t{int(float(row['rating']))}\t"
                          f"{row['timestamp']}\n")
        return target

    def retail_csvs(self, into: Path, name: str) -> Path:
        """The retail demo store's interactions.csv / items.csv shapes, filled from MovieLens: a movie is a product
        (CATEGORY_L1 its first genre, CATEGORY_L2 its first genre with Horror as "halloween" and Fantasy as
        "decorative", the two categories the promotions notebook filters on), a rating of 4 or more a Purchase
        after a View, anything else a View."""
        into.mkdir(parents=True, exist_ok=True)
        if name == "items.csv":
            with (self.shared / "movies.csv").open(encoding="utf-8") as src, \
                    (into / name).open("w", newline="") as dst:
                out = csv.writer(dst)
                out.writerow(["ITEM_ID", "PRICE", "CATEGORY_L1", "CATEGORY_L2", "PRODUCT_DESCRIPTION", "GENDER"])
                for row in csv.DictReader(src):
                    genre = row["genres"].split("|")[0].lower()
                    level2 = {"horror": "halloween", "fantasy": "decorative"}.get(genre, genre)
                    crc = zlib.crc32(row["movieId"].encode())
                    out.writerow([row["movieId"], f"{4.99 + crc % 50:.2f}", genre, level2, row["title"],
                                  ("M", "F", "")[crc % 3]])
        elif name == "interactions.csv":
            with self.ratings().open() as src, (into / name).open("w", newline="") as dst:
                out = csv.writer(dst)
                out.writerow(["ITEM_ID", "USER_ID", "EVENT_TYPE", "TIMESTAMP", "DISCOUNT"])
                for row in csv.DictReader(src):
                    out.writerow([row["movieId"], row["userId"], "View", row["timestamp"], "No"])
                    if float(row["rating"]) >= 4:
                        out.writerow([row["movieId"], row["userId"], "Purchase", int(row["timestamp"]) + 1, "Yes"])
        else:
            raise FileNotFoundError(f"no local stand-in for the download {name}")
        return into / name

    # -- downloads and shell commands -------------------------------------------------------------------------

    def download(self, url: str, into: Path) -> str:
        """Stand in for `wget URL` / `curl URL` run in `into`."""
        base = url.rstrip("/").rsplit("/", 1)[-1]
        if base == "ml-latest-small.zip":
            return f"copied {self.ml_latest_small(into)}"
        if base == "ml-100k.zip":
            return f"made {self.ml_100k(into)} from ml-latest-small"
        if "retaildemostore" in url:
            return f"made {self.retail_csvs(into, base)} from ml-latest-small"
        raise NotImplementedError(f"no local stand-in for the download {url}")

    def open(self, file: Any, *args: Any, **kwargs: Any) -> Any:
        """`open`, with the SageMaker notebook-instance metadata file answered from the scratch folder."""
        if str(file) == SAGEMAKER_METADATA:
            file = self.metadata_file
        return open(file, *args, **kwargs)


@contextmanager
def services(env: Environment, endpoint: str | None = None) -> Iterator[dict[str, str]]:
    """Start moto (S3, IAM, STS, SSM) and, unless `endpoint` is given, a Tastemaker server reading S3 from moto; set
    the variables that point boto3 at them; yield the variables. Restores os.environ afterwards."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    saved = dict(os.environ)
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # the notebooks attach AWS managed policies to their role
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    server = None
    try:
        if endpoint is None:
            from tastemaker.cli.local_server import LocalServer

            server = LocalServer(env.work / "server", import_roots=[env.work],
                                 env={"TASTEMAKER_S3_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "moto",
                                      "AWS_SECRET_ACCESS_KEY": "moto",
                                      "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                                  os.environ.get("PYTHONPATH")]))})
            server.start()
            endpoint = server.url
            os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = server.access_key, server.secret_key
        variables = {"AWS_DEFAULT_REGION": REGION,
                     "AWS_ENDPOINT_URL_PERSONALIZE": endpoint,
                     "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": endpoint,
                     "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS": endpoint,
                     **{f"AWS_ENDPOINT_URL_{name}": moto_url for name in ("S3", "IAM", "STS", "SSM")}}
        os.environ.update(variables)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)
        _cloudformation_outputs()
        yield variables
    finally:
        if server is not None:
            server.stop()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def _cloudformation_outputs() -> None:
    """What the getting-started CloudFormation stack leaves behind: a bucket, a role, and SSM parameters naming
    them."""
    import boto3

    bucket = "personalize-getting-started-" + re.sub(r"[^a-z0-9]", "", REGION)
    boto3.client("s3").create_bucket(Bucket=bucket)
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="PersonalizeGettingStartedRole", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "personalize.amazonaws.com"}}]}))
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=SSM_BUCKET, Value=bucket, Type="String", Overwrite=True)
    ssm.put_parameter(Name=SSM_ROLE, Value=role["Role"]["Arn"], Type="String", Overwrite=True)
