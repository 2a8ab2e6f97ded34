"""The loading room: models that come from files or from the Hugging Face hub.

    source      which model a name means: a gptbook checkpoint folder, a Hugging Face GPT-2 folder, or a hub id
    state       one checked state-dict load (every name and shape, before anything is copied)
    checkpoint  saving and loading gptbook checkpoints with safetensors (never pickle)
    hf_gpt2     reading OpenAI's GPT-2 weights in the Hugging Face format (names, splits, transposes)
    course_model  the course model shipped in gptbook/data: its metadata, and its weights checked and loaded

The public entry points stay where learners meet them: ``gptbook.load_checkpoint``, ``GPTModel.from_pretrained``,
``gptbook.load_gpt2_checkpoint`` (in ``gptbook.weights``, notebook 09's door, which re-exports ``hf_gpt2``'s names).
Nothing here imports the package's top level; ``checkpoint`` imports ``gptbook.model`` only when it builds a model.
"""
