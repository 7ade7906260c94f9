"""Provider fine-tuning (issue 19): datasets from approved run artefacts, jobs at OpenAI or Azure OpenAI.

- :mod:`core.finetune.scrub`: secrets and e-mail addresses out of training text;
- :mod:`core.finetune.dataset`: examples rebuilt from approved artefacts and their prompts,
  line-by-line validation, token count and training cost;
- :mod:`core.finetune.prices`: training prices per base model (the registry has no field for them);
- :mod:`core.finetune.contracts`: what the engine needs of a provider's files and fine-tuning API
  (the connector is :mod:`connectors.llm.finetune`; core never imports it);
- :mod:`core.finetune.service`: the engine service (``engine.tune_provider``) and its job kind.

docs/finetune.md ("Provider fine-tuning") is the user's page.
"""
