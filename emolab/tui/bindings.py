"""The console's keys, each defined once with an id (for keymap files) and a tooltip (for help).

Each screen lists the ones it answers to in its BINDINGS, in the order its footer shows them;
widgets (the slider, the forms) keep their own. Help and the command palette read the live
bindings, so a key rebound by a keymap is shown as rebound.
"""

from __future__ import annotations

from textual.binding import Binding

# -- the app and both screens ---------------------------------------------------------------------
SHOW_HELP = Binding("f1", "help", "Help", id="app.help", tooltip="Help: the keys of this screen")
QUIT = Binding("ctrl+q", "app.quit", "Quit", id="app.quit", priority=True, tooltip="Quit")

# -- the console view (chat and replay) -----------------------------------------------------------
SEARCH_EMOTIONS = Binding(
    "ctrl+g",
    "search_emotions",
    "Emotions",
    id="steer.search",
    tooltip="Add an emotion of the pack to the panel, or remove one (fuzzy search)",
)
CYCLE_TINT = Binding(
    "ctrl+t",
    "cycle_tint",
    "Tint",
    id="view.tint",
    tooltip="Tint the tokens by their strongest emotion, by valence, or not at all",
)
TOGGLE_SMOOTHING = Binding(
    "ctrl+e",
    "toggle_smoothing",
    "Smooth/raw",
    show=False,
    id="view.smoothing",
    tooltip="Show smoothed readouts or each token's own (alerts always use smoothed)",
)
TOGGLE_PANEL = Binding(
    "ctrl+b", "toggle_panel", "Panel", show=False, id="view.panel", tooltip="Show or hide the side panel"
)
PREVIOUS_TOKEN = Binding(
    "f2",
    "select_token(-1)",
    "◀ token",
    show=False,
    id="view.previous_token",
    tooltip="Select the previous token: the bars show its readout",
)
NEXT_TOKEN = Binding(
    "f3", "select_token(1)", "token ▶", show=False, id="view.next_token", tooltip="Select the next token"
)
FOLLOW_LIVE = Binding("f4", "follow_live", "live", show=False, id="view.follow", tooltip="Back to the live token")
HIDDEN_VIEW_KEYS = [TOGGLE_SMOOTHING, TOGGLE_PANEL, PREVIOUS_TOKEN, NEXT_TOKEN, FOLLOW_LIVE]

# -- the chat -------------------------------------------------------------------------------------
STOP = Binding("escape", "stop", "Stop", id="chat.stop", tooltip="Stop the reply after the current token")
NEW_CHAT = Binding(
    "ctrl+n", "new_chat", "New", id="chat.new", tooltip="New chat: clear the conversation and the model's cache"
)
REGENERATE = Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate", tooltip="Regenerate the last reply")
RESET_STEERING = Binding(
    "ctrl+l", "reset_steering", "Reset sliders", id="steer.reset", tooltip="Reset every slider to 0"
)
EDIT_SAMPLING = Binding(
    "ctrl+o",
    "edit_sampling",
    "Sampling",
    id="chat.sampling",
    tooltip="Sampling settings: temperature, top-p, max tokens, seed",
)
SAVE_SESSION = Binding(
    "ctrl+s", "save_session", "Save", show=False, id="session.save", tooltip="Save the session file now"
)
COMPARE = Binding(
    "f6",
    "compare",
    "Compare",
    show=False,  # in help and the palette; the footer (and its snapshots) stays as it was
    id="chat.compare",
    tooltip="Compare: answer the last message twice side by side, sliders vs no steering (again: close)",
)
BRANCH_HERE = Binding(
    "f7",
    "branch_here",
    "Branch here",
    show=False,
    id="chat.branch_here",
    tooltip="Branch here: write the selected token's reply on from that token (the old one stays a branch)",
)
PREVIOUS_BRANCH = Binding(
    "f8",
    "branch(-1)",
    "◀ branch",
    show=False,
    id="chat.previous_branch",
    tooltip="Show the previous branch of a reply (the next message continues from what is shown)",
)
NEXT_BRANCH = Binding(
    "f9", "branch(1)", "branch ▶", show=False, id="chat.next_branch", tooltip="Show the next branch of a reply"
)
BRANCH_KEYS = [COMPARE, BRANCH_HERE, PREVIOUS_BRANCH, NEXT_BRANCH]
RESTART_ENGINE = Binding(
    "f5",
    "restart_engine",
    "Restart engine",
    show=False,
    id="engine.restart",
    tooltip="Start the engine again after its process stopped (the transcript stays)",
)

# -- the replay -----------------------------------------------------------------------------------
PLAY = Binding("space", "toggle_play", "Play/pause", id="replay.play", tooltip="Play or pause the replay")
STEP_BACK = Binding("left", "step(-1)", "◀ Step", id="replay.step_back", tooltip="Step one token back")
STEP_FORWARD = Binding("right", "step(1)", "Step ▶", id="replay.step_forward", tooltip="Step one token forward")
NEXT_TURN = Binding("n", "next_turn", "Next turn", id="replay.next_turn", tooltip="Jump to the next turn")
NEXT_ALERT = Binding("a", "next_alert", "Next alert", id="replay.next_alert", tooltip="Jump to the next alert")
FASTER = Binding("plus,equals_sign", "speed(1)", "Faster", id="replay.faster", tooltip="Play faster (up to 20×)")
SLOWER = Binding("minus", "speed(-1)", "Slower", id="replay.slower", tooltip="Play slower (down to 0.25×)")
INSTANT = Binding("i", "instant", "Instant", id="replay.instant", tooltip="Show the whole session at once")
PLAYER_KEYS = [PLAY, STEP_BACK, STEP_FORWARD, NEXT_TURN, NEXT_ALERT, FASTER, SLOWER, INSTANT]
