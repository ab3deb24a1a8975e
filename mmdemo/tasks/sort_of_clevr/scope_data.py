"""Sentences for the question-scope detector (scope.py): what the six question kinds are not.

Three disjoint banks, each written by hand on 2026-12-06 before any detector was trained:
- TRAIN_OUT: out-of-scope sentences the detector learns from (the in-scope side is the generator's own
  training wordings, data.TRAIN_WORDINGS with frames, noise and dropped words: exactly what the models read);
- VAL_WORDINGS / VAL_OUT: in-scope rewordings and out-of-scope sentences that choose the threshold;
- TEST_OUT: out-of-scope sentences that only measure (with data.HELDOUT_WORDINGS, the in-scope side of the
  test). Nothing in TEST_OUT or HELDOUT_WORDINGS trains or chooses anything.
Templates take {c} (a colour), {o} (a noun) and {x} (a second colour) where they use them.
"""

from __future__ import annotations

# In-scope rewordings of the six kinds, for the threshold only: none is in TRAIN_WORDINGS or HELDOUT_WORDINGS.
VAL_WORDINGS: dict[str, list[str]] = {
    "shape": [
        "Which shape is the {c} {o}?",
        "What kind of shape is the {c} {o}?",
        "Is the {c} {o} round or square?",
        "Name the shape of the {c} {o}.",
        "What's the shape of the {c} {o}?",
    ],
    "left": [
        "Is the {c} {o} toward the left?",
        "Is the {c} {o} on the left-hand side?",
        "Is the {c} {o} to the right?",
        "Is the {c} {o} in the right half?",
    ],
    "top": [
        "Is the {c} {o} near the top?",
        "Is the {c} {o} in the upper part of the image?",
        "Is the {c} {o} near the bottom?",
        "Is the {c} {o} in the lower half?",
    ],
    "closest": [
        "What shape is the closest object to the {c} {o}?",
        "What shape is the object nearest the {c} {o}?",
        "Which shape is the object closest to the {c} {o}?",
    ],
    "furthest": [
        "What shape is the object that is farthest from the {c} {o}?",
        "What shape lies furthest from the {c} {o}?",
        "Which shape is the object most distant from the {c} {o}?",
    ],
    "count": [
        "How many shapes match the shape of the {c} {o}?",
        "How many objects are shaped the same as the {c} {o}?",
        "Count how many objects share the {c} {o}'s shape.",
    ],
}

# Out of scope, by category. Each category appears in all three banks with different sentences.
TRAIN_OUT: dict[str, list[str]] = {
    "other attributes": [
        "What colour is the {o} closest to the {c} {o}?",
        "What color is the square?",
        "What colour is the circle on the left?",
        "How big is the {c} {o}?",
        "What size is the {c} {o}?",
        "Is the {c} {o} large or small?",
        "What material is the {c} {o} made of?",
        "Is the {c} {o} shiny or matte?",
        "Is the {c} {o} made of metal?",
        "Which object is the biggest?",
        "What is the smallest object?",
        "How many {c} objects are there?",
        "How many objects are in the image?",
        "Are there any triangles?",
        "Is there a {c} triangle?",
        "Is the {c} {o} above the {x} {o}?",
        "What is to the left of the {c} {o}?",
        "Is the {c} {o} transparent?",
        "Which colour appears most often?",
        "How far apart are the {c} and {x} objects?",
        "Is the {c} {o} bigger than the {x} {o}?",
        "What texture does the {c} {o} have?",
        "How many colours are in the picture?",
        "Which {o} is darkest?",
        "Is the {c} {o} rotated?",
        "What is the area of the {c} {o}?",
    ],
    "greetings and chat": [
        "hello", "hi", "hey there", "good morning", "how are you?", "thanks!", "thank you very much",
        "what is your name?", "tell me a joke", "who made you?", "nice to meet you", "bye", "good night",
        "can you help me?", "I like this demo", "ok", "yes", "no", "what can you do?", "are you a robot?",
    ],
    "other questions": [
        "What is the capital of France?",
        "How many legs does a spider have?",
        "What is 2 + 2?",
        "Is there a cat in the picture?",
        "What animal is this?",
        "Who is in the photo?",
        "What is the man holding?",
        "Describe the image.",
        "What is the weather like today?",
        "Where was this picture taken?",
        "What time is it?",
        "Translate this sentence into French.",
        "Write a poem about circles.",
        "Why is the sky blue?",
        "What does this image mean?",
        "Is this a painting or a photo?",
    ],
    "other languages": [
        "Quelle est la forme de l'objet rouge ?",
        "¿Qué forma tiene el objeto rojo?",
        "Welche Form hat das rote Objekt?",
        "Qual è la forma dell'oggetto rosso?",
        "Qual é a forma do objeto vermelho?",
        "Welke vorm heeft het rode object?",
        "Jaki kształt ma czerwony obiekt?",
        "L'objet bleu est-il à gauche ?",
        "¿Está el objeto verde a la izquierda?",
        "Wie viele Objekte haben dieselbe Form?",
        "红色物体是什么形状？",
        "赤い物体はどんな形ですか？",
        "Какой формы красный объект?",
        "ما شكل الجسم الأحمر؟",
        "빨간 물체는 무슨 모양입니까?",
        "Kırmızı nesnenin şekli nedir?",
    ],
    "nonsense": [
        "asdf", "qwerty uiop", "lorem ipsum dolor sit amet", "1234", "???", "...", "blah blah blah",
        "zxcv bnm", "aaaaaaa", "the the the", "red", "square", "object", "xyz", "!!!", "banana phone",
        "colour shape left", "jkl; jkl;", "0 0 0 0", "purple monkey dishwasher",
    ],
}

VAL_OUT: dict[str, list[str]] = {
    "other attributes": [
        "What colour is the {o} furthest from the {c} {o}?",
        "Which colour is the circle?",
        "How large is the {c} {o}?",
        "Is the {c} {o} made of rubber?",
        "How many {c} things can you see?",
        "Is there a {c} star?",
        "Is the {c} {o} below the {x} {o}?",
        "Which object is the largest?",
        "Is the {c} {o} smaller than the {x} {o}?",
        "How many objects are there in total?",
    ],
    "greetings and chat": [
        "hi there!", "good evening", "how is it going?", "cheers", "who are you?", "sounds good", "hello world",
        "what's up?",
    ],
    "other questions": [
        "What is the capital of Spain?",
        "Is there a dog in this photo?",
        "What is the woman wearing?",
        "What year is it?",
        "Summarise this picture.",
        "How old is the universe?",
    ],
    "other languages": [
        "Quelle forme a l'objet bleu ?",
        "¿De qué color es el círculo?",
        "Ist das rote Objekt oben?",
        "Quante forme ci sono?",
        "蓝色的物体在左边吗？",
        "Где находится синий объект?",
    ],
    "nonsense": ["hjkl", "foo bar baz", "42", "---", "green", "circle circle", "qqq www", "mmm"],
}

TEST_OUT: dict[str, list[str]] = {
    "other attributes": [
        "What colour is the {o} nearest to the {c} {o}?",
        "What color is the shape on the right?",
        "Is the {c} {o} big?",
        "What is the {c} {o} made of?",
        "Is the {c} {o} glossy?",
        "What is the biggest shape in the picture?",
        "How many {c} shapes are there?",
        "How many shapes can you see?",
        "Is there a {c} hexagon?",
        "Is the {c} {o} higher than the {x} {o}?",
        "Which {o} is the smallest one?",
        "Is the {c} {o} wider than the {x} {o}?",
        "What colours do the squares have?",
        "Is the {c} {o} made of wood?",
        "How heavy is the {c} {o}?",
        "Which object is between the {c} and the {x} object?",
    ],
    "greetings and chat": [
        "hello everyone", "Hello, anybody there?", "hi all", "hey you", "good afternoon", "how are you doing today?", "thank you", "what's your name?",
        "tell me something funny", "goodbye", "see you later", "who built this?", "what are you?", "great job",
        "howdy", "yo",
    ],
    "other questions": [
        "What is the capital of Italy?",
        "How many wheels does a bicycle have?",
        "Is there a horse in the picture?",
        "What is the person doing?",
        "Describe what you see.",
        "What season is it in the photo?",
        "Who painted the Mona Lisa?",
        "What is the meaning of life?",
        "Can you write me an email?",
        "Is it going to rain tomorrow?",
    ],
    "other languages": [
        "De quelle forme est l'objet vert ?",
        "¿Qué forma tiene el objeto azul?",
        "Welche Form hat das gelbe Objekt?",
        "Di che forma è l'oggetto verde?",
        "O objeto vermelho está à esquerda?",
        "Is het blauwe object links?",
        "Ile obiektów ma ten sam kształt?",
        "Vilken form har det röda objektet?",
        "红色的物体是什么形状？",
        "这是什么？",
        "青い物体は左にありますか？",
        "Какой формы синий объект?",
        "الجسم الأزرق على اليسار؟",
        "파란 물체는 어디에 있습니까?",
        "Kırmızı nesne solda mı?",
        "Mikä muoto punaisella esineellä on?",
    ],
    "nonsense": [
        "asdfgh", "lkjhg", "lorem ipsum", "9999", ":-)", "test", "blue", "circle", "shape shape", "xyzzy",
        "hmmm", "ok ok ok", "bla", "aaaa bbbb", "the", "#$%",
    ],
}

# Written after the first detector had been measured on TEST_OUT (its misses used the noun "shape", which the
# training questions use and the first TRAIN_OUT did not: TRAIN_OUT now takes every noun), before the
# detector was trained again; it has never been used for a choice. Reported beside TEST_OUT.
FRESH_OUT: dict[str, list[str]] = {
    "other attributes": [
        "What colour is the {o} on the far left?",
        "Is the {c} {o} tiny?",
        "What is the {c} thing made from?",
        "Is the {c} shape metallic?",
        "Which shape is the largest one?",
        "How many {c} things are in the scene?",
        "How many shapes are there altogether?",
        "Is there a {c} triangle in the picture?",
        "Is the {c} {o} lower than the {x} {o}?",
        "Are the {c} and {x} shapes touching?",
        "Which colour is the shape closest to the {c} {o}?",
        "What is the outline colour of the {c} {o}?",
    ],
    "greetings and chat": [
        "hello there", "Hi, how are you?", "good day", "thanks a lot", "who are you exactly?", "have a nice day",
        "sup", "what is this app?",
    ],
    "other questions": [
        "What is the tallest mountain on Earth?",
        "Is there a bird in the image?",
        "What is the boy eating?",
        "Where is the nearest station?",
        "Explain this picture to me.",
        "What breed is the dog?",
    ],
    "other languages": [
        "Quelle forme a l'objet jaune ?",
        "¿El objeto gris está arriba?",
        "Wie viele Formen gibt es?",
        "L'oggetto blu è a sinistra?",
        "黄色的物体在上面吗？",
        "Сколько объектов такой же формы?",
        "Hangi şekil en yakın?",
        "Czy niebieski obiekt jest po lewej?",
    ],
    "nonsense": ["wxyz", "lalala", "123 456", "@@@", "yellow", "square square square", "ppp", "hmm ok"],
}

# Spoken only (heard_scope.py): commands and statements a visitor may say to a voice demo. Written on
# 2026-12-08, after `offtask check` (its groups, its sentences and its result: sentences naming a colour and
# questions about the picture were the ones answered) and before the heard-scope detector was trained; no
# sentence of offtask.GROUPS is here, and heard_scope.bank drops any that a fill would make equal to one.
SPOKEN_TRAIN_OUT: dict[str, list[str]] = {
    "commands": [
        "Open the {c} box.", "Pick up the {c} {o}.", "Move the {c} {o} to the left.", "Draw a {c} circle.",
        "Make the square {c}.", "Show me the {c} one.", "Delete the {c} {o}.", "Turn on the radio.", "Go back.",
        "Start again.", "Wait a moment.", "Zoom in.", "Take a picture.", "Read me the news.",
        "Add milk to the shopping list.", "Switch to the next image.", "Cancel that.", "Louder please.",
        "Give me the {c} ball.", "Hide the {c} {o}.",
    ],
    "statements": [
        "The {c} {o} is pretty.", "I see a {c} {o}.", "My favourite colour is {c}.", "That is a {c} {o}.",
        "{c} and {x} look good together.", "There is a {c} {o} on the left.", "The square is {c}.",
        "I painted my room {c}.", "We have a {c} car.", "The leaves turn {c} in autumn.",
        "This is a picture of shapes.", "The circle is next to the square.", "There are six objects.",
        "I think it is a circle.", "It is a square.", "Yes.", "No.", "The answer is two.", "{c}.",
        "The {c} {o} is at the bottom.",
    ],
}
SPOKEN_VAL_OUT: dict[str, list[str]] = {
    "commands": [
        "Bring me the {c} {o}.", "Turn the page.", "Show the next picture.", "Clear the screen.", "Move it up.",
        "Paint it {c}.", "Say that again.", "Go to sleep.",
    ],
    "statements": [
        "I love the colour {c}.", "The {c} {o} looks small.", "This picture has many shapes.",
        "There is a circle in the corner.", "The {x} one is my favourite.", "It has four objects.",
        "My shirt is {c}.", "The answer is square.",
    ],
}
