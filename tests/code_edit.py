"""A code edit the default model (Qwen2.5-Coder 0.5B Instruct) answers by copying most of its
prompt: speculation's tests ask it, in the engine and through the server."""

CODE = '''def total_price(items, tax_rate):
    subtotal = 0
    for item in items:
        subtotal += item.price * item.quantity
    tax = subtotal * tax_rate
    return subtotal + tax
'''

EDIT = ("Rename the function total_price to order_total and change nothing else. Reply with the "
        "code only.\n\n" + CODE)
