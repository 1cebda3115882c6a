"""`gpuops relay`: Alertmanager's webhook in, one Feishu/Lark card per alert group out, per team."""
