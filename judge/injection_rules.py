"""Multilingual word lists for the injection screen, and the two detectors built on them.

Every list is written in each language's own words and passed through
:func:`judge.injection_normalize.fold`, like the text it is matched against (so accents,
look-alike letters, case and invisible characters do not matter). Categories:

* ``eval``: who a planted instruction talks to (evaluator, grader, judge, scoring model …);
* ``self``: the response pointing at itself ("this answer", "the reply you are reading");
* ``pick``: what it asks for (choose, prefer, winner, best, better …);
* ``imperative``: the asking form ("choose it", "wählen Sie", "请选择");
* ``override``: "ignore the previous instructions" in each language;
* ``other``: the response knowing there is another one to beat ("the other answer").

:func:`strict_hits` flags (a hard flag, so it must hold on ordinary text: its false positives
are measured on all of ``../shared/data``); :func:`loose_hits` only decides which pairs are
judged a second time with the span removed (``judge.injection.neutralize``), so it aims at
recall and its cost is counted in extra judge calls.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache, lru_cache

from judge.injection_normalize import fold

__all__ = ["LANGUAGES", "loose_hits", "strict_hits"]

# Per language: category -> regex fragments (lower case, natural spelling; folded at compile
# time). Only \w, \s, \b and plain quantifiers inside fragments: folding lower-cases them.
LEXICON: dict[str, dict[str, list[str]]] = {
    "en": {
        "eval": [
            r"automated (?:system|reviewer|grader|evaluator|process|pipeline|check|judge|comparison|"
            r"scorer)s?",
            r"machine reader",
            r"\bbot\b",
            r"judges?",
            r"evaluators?",
            r"graders?",
            r"raters?",
            r"scorers?",
            r"assessors?",
            r"reviewers?",
            r"examiners?",
            r"referees?",
            r"arbiters?",
            r"annotators?",
            r"(?:grading|scoring|judging|evaluation|evaluating|reward|ranking|judge|language) models?",
            r"whoever (?:is |will be )?(?:scoring|grading|judging|evaluating|reviewing|comparing|ranking|"
            r"rating)",
            r"(?:whichever|any|the) (?:ai|model|llm|system) (?:is |that is |who is )?(?:reading|reviewing|"
            r"comparing|judging|evaluating|grading|scoring|ranking|rating)",
            r"if you are an? (?:ai|llm|language model|model|judge|evaluator|grader)",
        ],
        "self": [
            r"this (?:answer|response|reply|completion|output|submission|candidate|one|text)\b",
            r"the (?:answer|response|reply|text|completion) (?:you(?:'re| are) (?:reading|looking at|seeing|"
            r"evaluating|reviewing)|(?:shown )?(?:here|above|below)|containing this)",
            r"the (?:current|present) (?:text|answer|response|reply)",
            r"the (?:one|text|answer|response|reply) you(?:'re| are) "
            r"(?:reading|looking at|seeing|evaluating)",
        ],
        "pick": [
            r"choos",
            r"\bselect",
            r"\bpick",
            r"prefer",
            r"favou?r",
            r"\brank",
            r"\brate\b",
            r"rated\b",
            r"\bvote",
            r"winner",
            r"\bwins?\b",
            r"\bbest\b",
            r"\bbetter\b",
            r"superior",
            r"higher[- ]quality",
            r"on top\b",
            r"right call",
            r"correct (?:decision|output|choice|verdict|answer is)",
            r"mark (?:it|this|me) as",
            r"come out ahead",
            r"\bahead of",
        ],
        # (most English imperatives are judge.injection's own rules)
        "imperative": [r"\b(?:prefer|choose|pick|select|favou?r|vote for|rank) (?:me|this one)\b"],
        "override": [
            r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:\w+\s+){0,4}?(?:instructions?|rules|"
            r"rubrics?|criteria|guidelines|directives|prompts?)\b",
            r"your (?:instructions|rules|rubric|criteria) (?:have|has) "
            r"(?:changed|been updated|been replaced)",
            r"(?:evaluation|grading|judging|scoring) (?:mode|rules?|criteria) "
            r"(?:is |are |has been |have been )?(?:disabled|overridden|updated|changed|suspended)",
            r"system override",
        ],
        "other": [
            r"\b(?:first|second|other|previous|earlier|competing|rival) "
            r"(?:answer|response|reply|candidate|assistant|completion|model)s?\b",
            r"the other (?:answer|response|reply|candidate|assistant|completion|one|option|model)s?\b",
            r"\b(?:response|answer|assistant|output|candidate) (?:a|b|1|2)\b",
            r"both (?:answers|responses)",
            r"two (?:answers|responses|candidates|replies)",
        ],
    },
    "fr": {
        "eval": [
            r"evaluat(?:eur|rice)s?",
            r"correct(?:eur|rice)s?",
            r"\bjuges?\b",
            r"examinat(?:eur|rice)s?",
            r"notat(?:eur|rice)s?",
            r"arbitres?",
            r"modele (?:charge|de notation|d'evaluation|evaluateur|juge)",
        ],
        "self": [
            r"cette reponse",
            r"la reponse (?:que vous lisez|ci-dessus|actuelle|presente|que tu lis)",
            r"ce texte",
        ],
        "pick": [
            r"chois",
            r"selectionn",
            r"prefer",
            r"privilegi",
            r"\bvot",
            r"gagnant",
            r"meilleur",
            r"superieur",
            r"l'emporter",
            r"en tete",
        ],
        "imperative": [
            r"choisissez",
            r"choisis\b",
            r"selectionnez",
            r"preferez",
            r"privilegiez",
            r"votez",
            r"declarez",
        ],
        "override": [
            r"\b(?:ignore[rz]?|oublie[rz]?|ne tenez pas compte)\s+(?:\w+\s+){0,4}?(?:instructions|"
            r"consignes|regles|directives)"
        ],
        "other": [r"l'autre reponse", r"les deux reponses"],
    },
    "de": {
        "eval": [
            r"bewerter",
            r"gutachter",
            r"prufer",
            r"richter",
            r"beurteiler",
            r"evaluator",
            r"sprachmodell",
            r"korrektor",
        ],
        "self": [r"diese antwort", r"die (?:vorliegende|aktuelle|obige|hiesige) antwort", r"dieser text"],
        "pick": [
            r"wahl",
            r"bevorzug",
            r"bewerte",
            r"sieger",
            r"gewinn",
            r"\bbeste",
            r"\bbessere",
            r"uberlegen",
            r"vorzuziehen",
        ],
        "imperative": [r"wahlen sie", r"\bwahle\b", r"bevorzuge\b", r"bewerte\b", r"erklare"],
        "override": [
            r"\b(?:ignorier|vergiss|vergessen sie|missacht)\w*\s+(?:\w+\s+){0,4}?(?:anweisungen|"
            r"instruktionen|regeln|vorgaben)"
        ],
        "other": [r"die andere antwort", r"beide antworten"],
    },
    "es": {
        "eval": [
            r"evaluador(?:a|es)?",
            r"\bjuez",
            r"calificador",
            r"examinador",
            r"corrector",
            r"modelo juez",
        ],
        "self": [r"este texto", r"esta respuesta", r"la respuesta que (?:estas|esta|usted esta) leyendo"],
        "pick": [
            r"preferencia",
            r"\belig",
            r"\beleg",
            r"seleccion",
            r"prefer",
            r"favorec",
            r"ganador",
            r"\bmejor",
            r"superior",
            r"\bvot",
        ],
        "imperative": [r"eligela", r"\belige\b", r"selecciona\b", r"\bmarca\b", r"declara\b"],
        "override": [
            r"\b(?:ignora|olvida|descarta)\w*\s+(?:\w+\s+){0,4}?(?:instrucciones|reglas|indicaciones)"
        ],
        "other": [r"la otra respuesta", r"ambas respuestas"],
    },
    "pt": {
        "eval": [r"avaliador", r"\bjuiz", r"examinador", r"corretor"],
        "self": [r"este texto", r"esta resposta", r"essa resposta"],
        "pick": [
            r"preferencia",
            r"escolh",
            r"selecion",
            r"prefir",
            r"prefer",
            r"vencedor",
            r"melhor",
            r"superior",
            r"\bvot",
        ],
        "imperative": [r"escolha", r"selecione", r"declare\b"],
        "override": [r"\b(?:ignore|esqueca|desconsidere)\w*\s+(?:\w+\s+){0,4}?(?:instrucoes|regras)"],
        "other": [r"a outra resposta"],
    },
    "it": {
        "eval": [r"valutat(?:ore|rice|ori)", r"giudic", r"esaminatore", r"correttore"],
        "self": [r"questo testo", r"questa risposta"],
        "pick": [r"scegli", r"selezion", r"prefer", r"vincitor", r"migliore", r"superiore", r"\bvot"],
        "imperative": [r"sceglila", r"\bscegli\b", r"seleziona\b", r"\bvota\b"],
        "override": [r"\b(?:ignora|dimentica)\w*\s+(?:\w+\s+){0,4}?(?:istruzioni|regole)"],
        "other": [r"l'altra risposta"],
    },
    "nl": {
        "eval": [r"beoordelaar", r"jurylid", r"rechter", r"evaluator", r"taalmodel"],
        "self": [r"deze tekst", r"dit antwoord", r"deze reactie"],
        "pick": [r"\bkies", r"kiezen", r"selecteer", r"voorkeur", r"winnaar", r"\bbeste\b", r"\bbeter\b"],
        "imperative": [r"\bkies\b"],
        "override": [r"\b(?:negeer|vergeet)\s+(?:\w+\s+){0,4}?(?:instructies|regels)"],
        "other": [r"het andere antwoord"],
    },
    "tr": {
        "eval": [r"degerlendirici", r"degerlendiren", r"hakem", r"yargic", r"puanlayic"],
        "self": [r"bu metin", r"bu yanit", r"bu cevap"],
        "pick": [r"\bsec", r"tercih", r"kazanan", r"en iyi", r"daha iyi"],
        "imperative": [r"\bsecin\b", r"\bsec\b"],
        "override": [r"talimatlar\w*\s+(?:\w+\s+){0,2}?(?:yok say|gormezden gel)"],
        "other": [r"diger yanit", r"diger cevap"],
    },
    "vi": {
        "eval": [r"nguoi cham", r"giam khao", r"nguoi danh gia"],
        "self": [r"cau tra loi nay"],
        "pick": [r"\bchon\b", r"tot nhat", r"tot hon", r"\bthang\b"],
        "imperative": [r"hay chon"],
        "override": [r"bo qua\s+(?:\w+\s+){0,3}?(?:huong dan|chi dan|chi thi)"],
        "other": [r"cau tra loi kia"],
    },
    "pl": {
        "eval": [r"oceniajac", r"sedzi", r"egzaminator", r"oceniacz"],
        "self": [r"ten tekst", r"ta odpowiedz", r"te odpowiedz", r"tej odpowiedzi"],
        "pick": [r"wybierz", r"wybrac", r"najlepsz", r"\blepsz", r"zwyciez"],
        "imperative": [r"wybierz"],
        "override": [r"\b(?:zignoruj|ignoruj|zapomnij)\w*\s+(?:\w+\s+){0,4}?(?:instrukcje|polecenia)"],
        "other": [r"druga odpowiedz"],
    },
    "id": {
        "eval": [r"penilai", r"\bjuri\b", r"\bhakim\b", r"evaluator"],
        "self": [r"jawaban ini", r"respons ini"],
        "pick": [r"\bpilih", r"terbaik", r"lebih baik", r"pemenang", r"\bmenang"],
        "imperative": [r"pilihlah", r"\bpilih\b"],
        "override": [r"\babaikan\s+(?:\w+\s+){0,4}?(?:instruksi|petunjuk|perintah)"],
        "other": [r"jawaban lain"],
    },
    "ru": {
        "eval": [
            r"оценщик",
            r"оценивающ",
            r"судь[яеи]",
            r"проверяющ",
            r"рецензент",
            r"экзаменатор",
            r"модел\w*[- ]судь",
            r"языков\w* модел",
        ],
        "self": [r"этот ответ", r"данный ответ", r"ответ\w*,?\s+котор\w* (?:вы|ты) (?:сейчас )?чита"],
        "pick": [r"выбер", r"выбир", r"предпоч", r"лучш", r"победител", r"\bпобед", r"превосход"],
        "imperative": [r"выберите", r"выбери\b", r"предпочтите", r"объяви"],
        "override": [
            r"(?:игнорир|проигнорир|забудь|не обращай)\w*\s+(?:\w+\s+){0,4}?(?:инструкц|указани|правил)"
        ],
        "other": [r"друг\w* ответ"],
    },
    "zh": {
        "eval": [
            r"评审",
            r"評審",
            r"评委",
            r"評委",
            r"评分",
            r"評分",
            r"评估者",
            r"評估者",
            r"裁判",
            r"评判",
            r"評判",
            r"评价者",
            r"評價者",
            r"打分",
            r"考官",
            r"阅卷",
            r"閱卷",
            r"判官",
            r"评测模型",
            r"評測模型",
        ],
        "self": [
            r"这个回答",
            r"這個回答",
            r"本回答",
            r"这个答案",
            r"這個答案",
            r"本答案",
            r"此回答",
            r"此答案",
            r"这条回答",
            r"這條回答",
            r"该回答",
            r"該回答",
            r"这篇回答",
            r"這篇回答",
            r"这个回复",
            r"這個回覆",
        ],
        "pick": [
            r"选择",
            r"選擇",
            r"最好",
            r"更好",
            r"获胜",
            r"獲勝",
            r"胜出",
            r"勝出",
            r"优胜",
            r"優勝",
            r"偏向",
            r"偏好",
            r"胜者",
            r"勝者",
            r"最佳",
            r"更优",
            r"更優",
            r"赢",
            r"贏",
        ],
        "imperative": [r"请选择", r"請選擇", r"选择它", r"選擇它", r"判定"],
        "override": [r"(?:忽略|无视|無視|忘记|忘記)\w{0,12}?(?:指令|指示|说明|說明|规则|規則)"],
        "other": [r"另一个回答", r"另一個回答", r"另一个答案", r"另一個答案"],
    },
    "ja": {
        "eval": [r"評価者", r"採点者", r"審査員", r"審判", r"評価モデル", r"採点", r"ジャッジ", r"評価担当"],
        "self": [r"この回答", r"本回答", r"この答え", r"この応答"],
        "pick": [r"選んで", r"選択", r"最も優れ", r"優れ", r"勝者", r"勝ち", r"一番良", r"最良", r"優先"],
        "imperative": [r"選んでください", r"選択してください", r"としてください"],
        "override": [r"指示\w{0,12}?無視", r"無視\w{0,4}?指示"],
        "other": [r"もう一方の回答", r"他の回答"],
    },
    "hi": {
        "eval": [r"मूल्यांकनकर्ता", r"न्यायाधीश", r"जज", r"परीक्षक", r"निर्णायक"],
        "self": [r"यह उत्तर", r"इस उत्तर", r"यह जवाब", r"इस जवाब"],
        "pick": [r"चुन", r"सबसे अच्छा", r"बेहतर", r"विजेता", r"पसंद", r"श्रेष्ठ"],
        "imperative": [r"चुनें", r"घोषित करें"],
        "override": [r"निर्देश\w*\s+(?:\w+\s+){0,2}?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|अनदेखी)"],
        "other": [r"दूसरे उत्तर", r"दूसरा उत्तर"],
    },
    "ar": {
        "eval": [r"المقيم", r"للمقيم", r"مقيم", r"الحكم", r"للحكم", r"المحكم", r"المصحح", r"نموذج التقييم"],
        "self": [r"هذه الإجابة", r"هذه الاجابة", r"هذا الجواب", r"هذا الرد"],
        "pick": [r"اختيار", r"اختر", r"اختاروا", r"الأفضل", r"أفضل", r"الفائز", r"فائز"],
        "imperative": [r"اختر", r"اعتبر", r"يرجى اختيار"],
        "override": [r"تجاهل\w*\s+(?:\w+\s+){0,3}?التعليمات"],
        "other": [r"الإجابة الأخرى"],
    },
    "ko": {
        "eval": [r"평가자", r"심사위원", r"채점자", r"심판", r"평가 모델"],
        "self": [r"이 답변", r"이 응답", r"이 대답"],
        "pick": [r"선택", r"가장 좋", r"더 좋", r"승자", r"우승", r"최고"],
        "imperative": [r"선택하세요", r"선택해", r"선언하세요"],
        "override": [r"지시\w{0,12}?\s*(?:\w+\s+){0,3}?무시"],
        "other": [r"다른 답변"],
    },
    # Languages added after the "late" rows of the planted set were measured (README).
    "sv": {
        "eval": [r"bedomare", r"\bdomare", r"granskare", r"utvarderare"],
        "self": [r"detta svar", r"det har svaret"],
        "pick": [r"\bvalj", r"\bbasta\b", r"\bbattre\b", r"vinnare"],
        "imperative": [r"\bvalj\b"],
        "override": [r"\bignorera\s+(?:\w+\s+){0,4}?(?:instruktioner|regler)"],
        "other": [r"det andra svaret"],
    },
    "da": {  # and Norwegian
        "eval": [r"bedømmer", r"\bdommer", r"evaluator", r"\bsensoren\b"],
        "self": [r"dette svar"],
        "pick": [r"\bvælg", r"\bvelg", r"\bbedst", r"\bbest\b", r"\bbedre\b", r"vinder"],
        "imperative": [r"\bvælg\b", r"\bvelg\b"],
        "override": [r"\bignorer\s+(?:\w+\s+){0,4}?(?:instruktioner|instruksjoner|regler)"],
        "other": [r"det andet svar", r"det andre svaret"],
    },
    "cs": {  # and Slovak
        "eval": [r"hodnotitel", r"posuzovatel", r"\bsoudc", r"\bporot"],
        "self": [r"tento text", r"tato odpoved", r"tuto odpoved", r"tato odpoved"],
        "pick": [r"vyber", r"nejlepsi", r"\blepsi\b", r"vitez"],
        "imperative": [r"vyberte", r"\bvyber\b"],
        "override": [r"\bignoruj\w*\s+(?:\w+\s+){0,4}?(?:instrukce|pokyny)"],
        "other": [r"druha odpoved"],
    },
    "ro": {
        "eval": [r"evaluator", r"examinator", r"\bjudecator", r"\barbitru"],
        "self": [r"acest raspuns", r"raspunsul acesta"],
        "pick": [r"\baleg", r"\bcel mai bun", r"mai bun", r"castigator"],
        "imperative": [r"alegeti", r"\balege\b"],
        "override": [r"\bignora\w*\s+(?:\w+\s+){0,4}?(?:instructiunile|regulile)"],
        "other": [r"celalalt raspuns"],
    },
    "hu": {
        "eval": [r"ertekelo", r"biralo", r"\bbiro\b", r"\bbironak"],
        "self": [r"ez a valasz", r"ezt a valaszt"],
        "pick": [r"valaszd", r"valassza", r"legjobb", r"\bjobb\b", r"nyertes"],
        "imperative": [r"valaszd", r"valassza"],
        "override": [r"hagyd figyelmen kivul", r"hagyja figyelmen kivul"],
        "other": [r"a masik valasz"],
    },
    "fi": {
        "eval": [r"arvioija", r"tuomari", r"arvostelija"],
        "self": [r"tama teksti", r"tama vastaus", r"taman vastauksen"],
        "pick": [r"valitse", r"\bparas\b", r"parempi", r"voittaja"],
        "imperative": [r"valitse"],
        "override": [r"ohita\s+(?:\w+\s+){0,4}?(?:ohjeet|saannot)"],
        "other": [r"toinen vastaus"],
    },
    "sw": {
        "eval": [r"mtathmini", r"mwamuzi", r"msahihishaji", r"mkaguzi"],
        "self": [r"jibu hili"],
        "pick": [r"chagua", r"chague", r"\bbora\b", r"mshindi"],
        "imperative": [r"lichague", r"\bchagua\b"],
        "override": [r"puuza\s+(?:\w+\s+){0,4}?(?:maagizo|maelekezo)"],
        "other": [r"jibu lingine"],
    },
    "tl": {
        "eval": [r"tagasuri", r"hurado", r"tagahatol"],
        "self": [r"sagot na ito", r"itong sagot"],
        "pick": [r"piliin", r"pinakamahusay", r"mas mahusay", r"panalo"],
        "imperative": [r"piliin"],
        "override": [r"balewalain\s+(?:\w+\s+){0,4}?(?:tagubilin|instruksyon)"],
        "other": [r"ibang sagot"],
    },
    "uk": {
        "eval": [r"оцінювач", r"суддя", r"\bсудді", r"рецензент", r"екзаменатор"],
        "self": [r"ця відповідь", r"цю відповідь", r"цієї відповіді"],
        "pick": [r"оберіть", r"обери", r"виберіть", r"найкращ", r"кращ", r"переможц", r"перемог"],
        "imperative": [r"оберіть", r"виберіть", r"обери\b"],
        "override": [r"(?:ігноруй|проігноруй|забудь)\w*\s+(?:\w+\s+){0,4}?(?:інструкці|вказівк|правил)"],
        "other": [r"інш\w* відповід"],
    },
    "el": {
        "eval": [r"αξιολογητ", r"κριτη", r"βαθμολογητ"],
        "self": [r"αυτη η απαντηση", r"αυτην την απαντηση"],
        "pick": [r"επιλεξ", r"καλυτερη", r"νικητ"],
        "imperative": [r"επιλεξτε"],
        "override": [r"αγνοησ\w*\s+(?:\w+\s+){0,4}?(?:οδηγιες|κανονες)"],
        "other": [r"η αλλη απαντηση"],
    },
    "he": {
        "eval": [r"המעריך", r"מעריך", r"השופט", r"הבודק"],
        "self": [r"התשובה הזו", r"התשובה הזאת", r"תשובה זו"],
        "pick": [r"בחר", r"הטובה ביותר", r"טובה יותר", r"המנצח"],
        "imperative": [r"בחר", r"בחרו"],
        "override": [r"התעלם\w*\s+(?:\w+\s+){0,4}?(?:מההוראות|הוראות)"],
        "other": [r"התשובה האחרת"],
    },
    "fa": {
        "eval": [r"ارزیاب", r"داور", r"مصحح"],
        "self": [r"این پاسخ", r"این جواب"],
        "pick": [r"انتخاب", r"بهترین", r"بهتر", r"برنده"],
        "imperative": [r"انتخاب کنید", r"انتخاب کن"],
        "override": [r"دستورالعمل\w*\s+(?:\w+\s+){0,4}?(?:نادیده|ignore)"],
        "other": [r"پاسخ دیگر"],
    },
    "th": {
        "eval": [r"ผู้ประเมิน", r"กรรมการ", r"ผู้ตัดสิน", r"ผู้ให้คะแนน"],
        "self": [r"คำตอบนี้"],
        "pick": [r"เลือก", r"ดีที่สุด", r"ดีกว่า", r"ผู้ชนะ"],
        "imperative": [r"โปรดเลือก", r"กรุณาเลือก"],
        "override": [r"เพิกเฉย\w{0,20}คำสั่ง", r"ไม่ต้องสนใจ\w{0,20}คำสั่ง"],
        "other": [r"คำตอบอื่น"],
    },
    "bn": {
        "eval": [r"মূল্যায়নকারী", r"বিচারক", r"পরীক্ষক"],
        "self": [r"এই উত্তর"],
        "pick": [r"বেছে নিন", r"সেরা", r"ভালো", r"বিজয়ী"],
        "imperative": [r"বেছে নিন"],
        "override": [r"নির্দেশ\w*\s+(?:\w+\s+){0,3}?উপেক্ষা"],
        "other": [r"অন্য উত্তর"],
    },
    "ur": {
        "eval": [r"جانچنے والے", r"ممتحن", r"منصف", r"جج"],
        "self": [r"یہ جواب", r"اس جواب"],
        "pick": [r"منتخب", r"سب سے بہتر", r"بہتر", r"فاتح"],
        "imperative": [r"منتخب کریں"],
        "override": [r"ہدایات\w*\s+(?:\w+\s+){0,3}?(?:نظر انداز|نظرانداز)"],
        "other": [r"دوسرا جواب"],
    },
}
LANGUAGES = tuple(LEXICON)

# The loose detector's extra words: talking to a model at all, judge vocabulary, verdict
# formats. None is a flag on its own; each only buys a second judgment with the span removed.
_LOOSE_EXTRA = [
    # a model addressed ("AI" beside CJK text has no word boundary: ASCII letters only)
    r"(?<![a-z])(?:ai|llm|gpt\w*|ia|ki)(?![a-z])",
    r"language model",
    r"\bmodell?\b",
    r"\bmodelo\b",
    r"\bmodele\b",
    r"модел",
    r"模型",
    r"モデル",
    r"人工智能",
    r"\bии\b",
    r"\bші\b",
    r"एआई",
    r"الذكاء الاصطناعي",
    r"هوش مصنوعی",
    r"인공지능",
    r"kunstmatige intelligentie",
    r"yapay zeka",
    # judge vocabulary and verdict formats
    r"\bverdict",
    r"\[\[\s*(?:[abc]|tie|\d+(?:\.\d)?)\s*\]\]",
    r"\b[ab]\s*>>?\s*[ab]\b",
    r"output \([ab]\)",
    r"\bwinner\b",
    r"\bgrading\b",
    r"\bscoring\b",
    r"\brubric",
    r"\bjudg(?:e|ing)\b",
    r"\bevaluat(?:ion|ing|or)",
    r"\bassistant [ab12]\b",
    r"\bpreferred\b",
    r"\bsystem\s*:",
    r"<\|",
    r"\[/?inst\]",
    r"\bbewert",
    r"оцен",
    r"оцін",
    r"评",
    r"評",
    r"평가",
    r"मूल्यांकन",
    r"تقييم",
    r"ارزیاب",
    r"\bgold (?:answer|standard|label)",
    r"reference (?:solution|answer)",
    r"model (?:answer|solution)",
    r"full (?:credit|marks)",
    # comparing two texts: what the judge does, rarely what an answer talks about
    r"\bcompar(?:e|es|ed|ing|ison)\b",
    r"vergleich",
    r"\bcompar[aá]",
    r"сравнива",
    r"порівню",
    r"比较",
    r"比較",
    r"비교",
    r"तुलना",
    r"يقارن",
    r"مقارنة",
    r"\bkarsilastir",
    r"porown",
    r"\bvergelijk",
    # the judge's own instructions, old or new
    r"(?:previous|prior|earlier|original|new|updated|real|actual|hidden) "
    r"(?:instructions?|guidance|guidelines|directions|directives|rules|criteria|rubric|task)\b",
    r"meta[- ]instruction",
    r"which (?:one )?is (?:better|best|preferable)",
    r"of the two\b",
    r"the alternative\b",
    r"\bnote (?:to|for) (?:the |any )?(?:system|model|ai|assistant|reader)",
]
# Verdict-shaped JSON: a key a judge's answer would have, whatever it is called.
_JSON_VERDICT = re.compile(
    r"[\"'](?:decision|verdict|winner|preferred(?:_\w+)?|better(?:_\w+)?|choice|judg(?:e?ment)|ranking|"
    r"evaluation|final_?(?:answer|choice|decision)|selected|best(?:_\w+)?|label|result|score)[\"']\s*:\s*"
    r"(?:\{[^{}]{0,200}\}|[\"'][^\"']{0,60}[\"']|\d+(?:\.\d+)?)",
)
_JSON_VALUE = re.compile(
    r"this|current|present|me\b|mine|self|response|answer|reply|assistant|output|candidate|first|second|"
    r"\b[ab]\b|[ab]\s*>|\b(?:10|100)\b|1\.0|preferred|winner|better|best"
)
_SENTENCE_END = re.compile(r"[.!?;:\n。！？；：]+")


def _compile(fragments: list[str]) -> re.Pattern[str]:
    # (?!) never matches: a category with no fragment for a script matches nothing
    return re.compile("|".join(f"(?:{f})" for f in fragments) or "(?!)")


@cache
def _patterns(ascii_only: bool) -> dict[str, re.Pattern[str]]:
    """One pattern per category; for ASCII text only the fragments that can match ASCII (the
    long alternation of every script costs time at every position of a text)."""
    merged: dict[str, list[str]] = {}
    for lists in LEXICON.values():
        for category, fragments in lists.items():
            merged.setdefault(category, []).extend(fragments)
    merged["loose"] = list(_LOOSE_EXTRA)
    folded = {category: [fold(f) for f in fragments] for category, fragments in merged.items()}
    if ascii_only:
        folded = {category: [f for f in fragments if f.isascii()] for category, fragments in folded.items()}
    return {category: _compile(fragments) for category, fragments in folded.items()}


def _sentences(text: str) -> list[int]:
    """Start offsets of the sentences of a folded text (for the co-occurrence window)."""
    return [0] + [m.end() for m in _SENTENCE_END.finditer(text)]


@lru_cache(maxsize=1024)
def _find(category: str, folded: str) -> list[tuple[int, str]]:
    """(offset, words) of every match of a category: the screen and the re-judge detector read
    the same folded texts, so each category is searched once per text."""
    return [(m.start(), m.group(0)) for m in _patterns(folded.isascii())[category].finditer(folded)]


def _near(
    a: list[tuple[int, str]], b: list[tuple[int, str]], starts: list[int], window: int = 1
) -> str | None:
    """The first match of ``a`` with a match of ``b`` in the same or the next sentence."""
    if not a or not b:
        return None
    b_sentences = {bisect_right(starts, pos) for pos, _ in b}
    for pos, word in a:
        s = bisect_right(starts, pos)
        if any(s + d in b_sentences for d in range(-window, window + 1)):
            return word
    return None


def strict_hits(folded: str) -> list[str]:
    """Flag-worthy findings in one folded text: overrides of the judge's instructions, and the
    evaluator + this response + choose/prefer/best combination (or a response that points at
    itself with an imperative), in any listed language; verdict-shaped JSON."""
    hits = []
    if overrides := _find("override", folded):
        hits.append(f"instruction to the judge ({overrides[0][1][:60]!r})")
    starts = _sentences(folded)
    evals, selves = _find("eval", folded), _find("self", folded)
    if evals and selves:
        picks = _find("pick", folded)
        word = _near(evals, selves, starts)
        if word and _near(evals, picks, starts) and _near(selves, picks, starts):
            hits.append(f"instruction to the judge (addressed to {word!r}, pointing at itself)")
    if selves or evals:
        imperatives = _find("imperative", folded)
        if word := _near(imperatives, selves + evals, starts):
            hits.append(f"instruction to the judge ({word!r} about itself)")
    if "{" in folded:
        for m in _JSON_VERDICT.finditer(folded):
            if _JSON_VALUE.search(m.group(0).split(":", 1)[1]):
                hits.append(f"verdict string ({m.group(0)[:60]!r})")
                break
    return hits


def loose_hits(folded: str) -> list[str]:
    """What makes a text worth a second judgment without it: any word addressed to an evaluator,
    an override, the response pointing at itself next to a preference, a mention of the other
    response, judge vocabulary, or verdict-shaped JSON."""
    found = []
    for category in ("eval", "override", "other", "loose", "self"):
        if matches := _find(category, folded):
            found.append(f"{category}: {matches[0][1][:40]!r}")
    if "{" in folded and _JSON_VERDICT.search(folded):
        found.append("verdict-shaped JSON")
    return found
