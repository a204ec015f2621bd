"""nbval runs every notebook here at its default (quick) parameters, in file order:
data, then training, then the figures. They write into a temporary work folder,
so the tests never touch the repository's data/ and figures/. The renders of other
profiles under notebooks/<profile>/ are copies to read, not tests."""
import os
import tempfile

os.environ.setdefault("COMPANION_WORKDIR", tempfile.mkdtemp(prefix="companion-nbval-"))
os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars are noise in stored outputs

collect_ignore = ["gpu", "paper"]
