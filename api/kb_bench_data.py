"""The labelled set for `voicegraph kb bench`: small documents and questions with their answers.

Questions are of two kinds, as users ask them: paraphrases that share few words with the
passage, and exact names, codes and numbers that embeddings blur. Unrelated questions
check the relevance floor: they must find nothing.
"""

from __future__ import annotations

__all__ = ["DOCUMENTS", "QUESTIONS", "UNRELATED", "distractors"]

DOCUMENTS: dict[str, str] = {
    "handbook.md": "# Employee Handbook\n\n## Leave\n\nEvery employee gets 27 days of paid leave a year plus public "
    "holidays. Unused leave up to five days carries over and expires on 31 March.\n\n## Expenses\n\nMeals abroad are "
    "reimbursed up to 60 euros a day with receipts. Submit expense claims within 30 days.",
    "heron.md": "# Project Heron\n\nHeron is the codename for the new warehouse-routing service. The wifi password for "
    "the Heron lab is blue-otter-42. The project lead is Tomasz Wisniewski.",
    "parts.md": "# Spare parts\n\nThe replacement pump for the cooling loop is part ZX-4471; the older ZX-4417 does "
    "not fit the 2023 chassis. Order through the maintenance desk.",
    "invoices.md": "# Open invoices\n\nInvoice 88213 from Nordlicht GmbH covers the March server rental and is due on "
    "15 May. Invoice 88231 was paid in full.",
    "recipe.txt": "Grandma's apple cake\n\nBeat 200 g butter with 180 g sugar, add four eggs and 250 g flour. Bake at "
    "175 degrees for 50 minutes. The secret ingredient is a pinch of cardamom.",
    "garden.md": "# Garden\n\nTomatoes need six hours of sun a day. Water them at the roots in the morning, never on "
    "the leaves, to avoid blight.",
    "car.md": "# Company car\n\nThe company van is a white Ford Transit with the plate KX-221. It is serviced every "
    "20000 km at the garage on Mill Road.",
    "security.md": "# Security\n\nThe office alarm code changes every quarter; ask Lena Okafor at reception. Visitors "
    "must sign in and wear a badge at all times.",
    "onboarding.md": "# Onboarding\n\nNew hires get a laptop on their first day and meet their buddy in the first "
    "week. The probation period lasts six months.",
    "server.md": "# Build server\n\nThe continuous integration server runs on host ci-07 in rack B3. Nightly builds "
    "start at 02:30 UTC and keep artefacts for 14 days.",
    "travel.md": "# Travel\n\nTrain is preferred over flying for trips under 600 km. Book hotels through the portal; "
    "the nightly limit in Berlin is 140 euros.",
    "kettle.md": "# The Copper Kettle\n\nThe head chef at the Copper Kettle restaurant is Marta Lindqvist. She has "
    "cooked there since 2019. The restaurant opens at noon on weekdays.",
}

QUESTIONS: list[tuple[str, str]] = [
    ("how many vacation days do I get", "handbook.md"),
    ("when does leftover holiday expire", "handbook.md"),
    ("how much can I spend on food when travelling abroad", "handbook.md"),
    ("what is the wifi password in the lab", "heron.md"),
    ("who leads the warehouse routing project", "heron.md"),
    ("ZX-4471", "parts.md"),
    ("which pump fits the cooling loop", "parts.md"),
    ("invoice 88213", "invoices.md"),
    ("when is the Nordlicht bill due", "invoices.md"),
    ("88231", "invoices.md"),
    ("what makes the apple cake special", "recipe.txt"),
    ("how long do I bake the cake", "recipe.txt"),
    ("how much sunlight do tomato plants need", "garden.md"),
    ("how should I water my tomatoes", "garden.md"),
    ("what is the licence plate of the company van", "car.md"),
    ("KX-221", "car.md"),
    ("who knows the alarm code", "security.md"),
    ("do visitors need a badge", "security.md"),
    ("how long is the probation period for new employees", "onboarding.md"),
    ("what happens on my first day at work", "onboarding.md"),
    ("ci-07", "server.md"),
    ("what time do nightly builds start", "server.md"),
    ("should I take the train or fly", "travel.md"),
    ("what is the hotel budget in Berlin", "travel.md"),
    ("who is the head chef at the Copper Kettle", "kettle.md"),
    ("since when has Marta Lindqvist cooked there", "kettle.md"),
]

UNRELATED: list[str] = [
    "Who won the football world cup in 2018?",
    "What time is it in Tokyo?",
    "Tell me a joke.",
    "What is the capital of Australia?",
    "How do I reset my router password?",
    "What is the boiling point of mercury?",
    "Recommend a good science fiction novel.",
    "How far is the moon from the earth?",
]


_ADJECTIVES = ("steel", "compact", "spare", "heavy", "sealed", "quiet", "backup", "standard")
_NOUNS = ("valve", "pump", "filter", "bearing", "gasket", "sensor", "fan", "relay")
_SYSTEMS = ("cooling loop", "hydraulics", "air handling", "boiler", "conveyor", "generator")
_VENDORS = ("Acme Ltd", "Borealis AG", "Castellan SA", "Delta Supplies", "Eastwind Oy", "Fjord AS")


def distractors(count: int) -> dict[str, str]:
    """Look-alike documents: part catalogues and invoice ledgers full of similar codes and numbers.

    They make exact-code questions hard for vectors alone (every ZX code embeds alike), which
    is what the lexical half of hybrid search is for. None holds a code the questions ask for.
    """
    docs: dict[str, str] = {}
    for index in range(count):
        lines = []
        for row in range(8):
            n = 5000 + index * 8 + row
            lines.append(
                f"Part ZX-{n} is a {_ADJECTIVES[n % 8]} {_NOUNS[(n // 8) % 8]} for the {_SYSTEMS[n % 6]}."
                if index % 2 == 0
                else f"Invoice {89000 + n} from {_VENDORS[n % 6]} covers {_NOUNS[n % 8]} repairs and is due in "
                f"{n % 28 + 1} days."
            )
        kind = "catalogue" if index % 2 == 0 else "ledger"
        docs[f"{kind}-{index:03d}.md"] = f"# {kind.title()} {index}\n\n" + "\n\n".join(lines)
    return docs
