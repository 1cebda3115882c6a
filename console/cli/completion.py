"""`gpuops completion`: the shell's completion script, from click's own."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL: commands, options and choices complete on Tab.

    \b
      bash:  echo 'eval "$(gpuops completion bash)"' >> ~/.bashrc
      zsh:   echo 'eval "$(gpuops completion zsh)"' >> ~/.zshrc
      fish:  gpuops completion fish > ~/.config/fish/completions/gpuops.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command  # the gpuops group, whichever way it was started
    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(root, {}, "gpuops", "_GPUOPS_COMPLETE").source(), nl=False)
